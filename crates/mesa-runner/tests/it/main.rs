mod openai_compat;
mod process;
mod worktree;
