//! approvals (in progress)
