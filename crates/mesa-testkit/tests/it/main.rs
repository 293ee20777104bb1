//! Integration tests of the fake model server: every API over a real socket with reqwest, and
//! the real Claude Code CLI against it (`claude_code`, which needs `claude` installed).

#![expect(
    clippy::disallowed_methods,
    reason = "tests read MESA_CLAUDE_BIN, CI and PATH, and spawn the real claude CLI"
)]

mod anthropic;
mod claude_code;
mod codex;
mod openai;
mod support;
