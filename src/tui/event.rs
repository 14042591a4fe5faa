//! The event loop: raw mode and the alternate screen, restored on exit, on error (by a
//! guard) and on panic (by a hook that runs before the default one).

use super::action::Action;
use super::app::App;
use super::{keymap, view};
use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{self, Stdout};
use std::time::Duration;

/// Puts the terminal back: cooked mode, main screen, visible cursor.
fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
}

/// Restores the terminal when dropped (normal exit and `?` on an error).
struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}

/// Runs the explorer until the user quits.
pub fn run(app: &mut App) -> Result<(), String> {
    let err = |e: io::Error| format!("terminal: {e}");
    app.background = true;
    install_panic_hook();
    enable_raw_mode().map_err(err)?;
    let _guard = Guard;
    execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture).map_err(err)?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(io::stdout())).map_err(err)?;
    terminal.clear().map_err(err)?;
    let mut dirty = true;
    while !app.quit {
        if dirty {
            terminal.draw(|f| view::draw(f, app)).map_err(err)?;
        }
        // Wake up now and then to take the background sweep's progress.
        if !event::poll(Duration::from_millis(100)).map_err(err)? {
            dirty = app.tick();
            continue;
        }
        dirty = true;
        match event::read().map_err(err)? {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                if let Some(a) = keymap::lookup(k) {
                    app.update(a);
                }
            }
            Event::Mouse(m) => {
                let action = match m.kind {
                    MouseEventKind::Down(MouseButton::Left) => {
                        let size = terminal.size().map_err(err)?;
                        let screen = ratatui::layout::Rect::new(0, 0, size.width, size.height);
                        view::row_at(app, screen, m.column, m.row).map(Action::Select)
                    }
                    MouseEventKind::ScrollDown => Some(Action::Down),
                    MouseEventKind::ScrollUp => Some(Action::Up),
                    _ => None,
                };
                if let Some(a) = action {
                    app.update(a);
                }
            }
            Event::Resize(..) => terminal.autoresize().map_err(err)?,
            _ => {}
        }
        app.tick();
    }
    terminal.show_cursor().map_err(err)?;
    Ok(())
}
