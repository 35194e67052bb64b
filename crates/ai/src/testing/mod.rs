//! Test support: an OpenAI-compatible HTTP fake ([`fake_openai::FakeOpenAi`]) for the
//! third-party API that cannot run here. The real client code is what gets tested
//! against it.

pub mod fake_openai;
