//! governance (in progress)
