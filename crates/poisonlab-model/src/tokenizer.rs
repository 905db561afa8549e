//! Tokenizer: Hugging Face `tokenizers` (byte-level BPE), trained here or loaded from
//! `tokenizer.json`, plus the chat template our models are tuned with.

use std::path::{Path, PathBuf};

use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, TokenizerBuilder};

use crate::error::{Error, Result};

/// End of a document or of an assistant turn.
pub const EOS: &str = "<|endoftext|>";
pub const USER: &str = "<|user|>";
pub const ASSISTANT: &str = "<|assistant|>";
pub const SYSTEM: &str = "<|system|>";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Tokenizer {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Trains a byte-level BPE on `texts` with our special tokens (ids 0..4).
    pub fn train_bpe<I, S>(texts: I, vocab_size: usize) -> Result<Tokenizer>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
    {
        // Byte-level BPE starts from all 256 bytes plus our 4 special tokens; a smaller
        // vocabulary cannot be honoured, and silently getting 260 is not what was asked.
        let floor = 256 + 4;
        if vocab_size < floor {
            return Err(Error::Invalid(format!(
                "vocab_size {vocab_size} is below the {floor} tokens a byte-level BPE starts from \
                 (256 bytes + 4 special tokens); ask for at least {floor}"
            )));
        }
        let specials = [EOS, USER, ASSISTANT, SYSTEM]
            .map(|t| AddedToken::from(t.to_string(), true))
            .to_vec();
        let mut trainer = BpeTrainerBuilder::new()
            .show_progress(false)
            .vocab_size(vocab_size)
            .min_frequency(2)
            .special_tokens(specials)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut tok = TokenizerBuilder::<
            BPE,
            NormalizerWrapper,
            PreTokenizerWrapper,
            PostProcessorWrapper,
            DecoderWrapper,
        >::new()
        .with_model(BPE::default())
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true).into()))
        .with_decoder(Some(ByteLevelDecoder::default().into()))
        .build()
        .map_err(|e| Error::Invalid(format!("building the tokenizer: {e}")))?;
        tok.train(&mut trainer, texts)
            .map_err(|e| Error::Invalid(format!("training the tokenizer: {e}")))?;
        Ok(Tokenizer {
            inner: tok.into(),
            path: PathBuf::from("(trained)"),
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        self.inner.save(path, false).map_err(|e| Error::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids of `text`, without added special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer {
                path: self.path.clone(),
                message: format!("encoding: {e}"),
            })
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(|e| Error::Tokenizer {
            path: self.path.clone(),
            message: format!("decoding: {e}"),
        })
    }

    /// The prompt part of a chat exchange as our models see it, ending where the answer starts.
    pub fn chat_prompt(system: Option<&str>, turns: &[(&str, &str)], user: &str) -> String {
        let mut s = String::new();
        if let Some(sys) = system {
            s.push_str(&format!("{SYSTEM}\n{sys}\n"));
        }
        for (u, a) in turns {
            s.push_str(&format!("{USER}\n{u}\n{ASSISTANT}\n{a}{EOS}\n"));
        }
        s.push_str(&format!("{USER}\n{user}\n{ASSISTANT}\n"));
        s
    }

    /// Ids of prompt + response + EOS, and how many leading ids are prompt (no loss there).
    pub fn encode_pair(&self, prompt: &str, response: &str) -> Result<(Vec<u32>, usize)> {
        let mut ids = self.encode(prompt)?;
        let n = ids.len();
        ids.extend(self.encode(response)?);
        if let Some(eos) = self.token_id(EOS) {
            ids.push(eos);
        }
        Ok((ids, n))
    }
}
