//! `hequant explore`: a terminal explorer over the live cost model. State ([`app`]),
//! then update ([`app::App::update`] applying an [`action::Action`] from the one
//! [`keymap`]), then view ([`view::draw`], which only reads the state); [`chart`] sweeps
//! the charts (inline or on a background thread); [`event`] runs the loop on a real terminal.

pub mod action;
pub mod app;
pub mod chart;
pub mod event;
pub mod keymap;
pub mod view;

pub use app::App;
