//! cosmodiff-infer
