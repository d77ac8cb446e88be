//! Shared config sections ([cosmology], [[tracer]], [cl], ...).
