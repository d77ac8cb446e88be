//! PNG figures for cosmodiff (maps, spectra, corner plots, coverage curves).
//!
//! Everything renders with [`plotters`]' bitmap backend and an embedded
//! DejaVu Sans font (see `assets/fonts/DejaVu-LICENSE`), so figures need no
//! system fonts and look the same on every machine.
//!
//! Modules:
//! - [`lines`]: x-y curves with optional error bars and log axes (P(k), C_ell).
//! - [`map`]: 2-D maps side by side with a shared colour scale.
//! - [`corner`]: corner plots of posterior draws with 68/95% contours.

#![warn(missing_docs)]

pub mod corner;
pub mod lines;
pub mod map;

use std::sync::Once;

/// Errors raised while drawing a figure.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The backend could not draw or write the file.
    #[error("plot {path}: {msg}")]
    Draw {
        /// The figure's file.
        path: String,
        /// The backend's message.
        msg: String,
    },
    /// Data that cannot be drawn (empty, mismatched lengths, ...).
    #[error("plot: {0}")]
    Input(String),
}

/// `Result` with [`PlotError`].
pub type Result<T> = std::result::Result<T, PlotError>;

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static INIT: Once = Once::new();

/// Register the embedded font under the family name "sans-serif".
/// Called by every drawing function; cheap after the first call.
pub fn init_fonts() {
    INIT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            plotters::style::FontStyle::Normal,
            FONT_BYTES,
        );
    });
}

/// Turn any drawing error into a [`PlotError`] naming the output file.
pub(crate) fn draw_err<E: std::fmt::Display>(
    path: &std::path::Path,
) -> impl Fn(E) -> PlotError + '_ {
    move |e| PlotError::Draw {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}
