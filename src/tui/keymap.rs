//! The one keymap table: [`lookup`] handles keys with it and the help overlay lists it.

use super::action::{Action, Axis};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key and how the help overlay names it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    pub code: KeyCode,
    pub label: &'static str,
}

const fn ch(c: char, label: &'static str) -> Key {
    Key {
        code: KeyCode::Char(c),
        label,
    }
}

const fn code(code: KeyCode, label: &'static str) -> Key {
    Key { code, label }
}

/// One entry of the keymap.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub help: &'static str,
}

/// Every key the explorer knows, in the order the help overlay shows them.
pub const KEYMAP: &[Binding] = &[
    Binding {
        keys: &[ch('k', "k"), code(KeyCode::Up, "Up")],
        action: Action::Up,
        help: "previous layer",
    },
    Binding {
        keys: &[ch('j', "j"), code(KeyCode::Down, "Down")],
        action: Action::Down,
        help: "next layer",
    },
    Binding {
        keys: &[code(KeyCode::PageUp, "PgUp")],
        action: Action::PageUp,
        help: "up ten layers",
    },
    Binding {
        keys: &[code(KeyCode::PageDown, "PgDn")],
        action: Action::PageDown,
        help: "down ten layers",
    },
    Binding {
        keys: &[ch('g', "g"), code(KeyCode::Home, "Home")],
        action: Action::Top,
        help: "first layer",
    },
    Binding {
        keys: &[ch('G', "G"), code(KeyCode::End, "End")],
        action: Action::Bottom,
        help: "last layer",
    },
    Binding {
        keys: &[ch('h', "h"), code(KeyCode::Left, "Left")],
        action: Action::WeightBits(-1),
        help: "weight bits -1 (this layer)",
    },
    Binding {
        keys: &[ch('l', "l"), code(KeyCode::Right, "Right")],
        action: Action::WeightBits(1),
        help: "weight bits +1 (this layer)",
    },
    Binding {
        keys: &[ch('H', "H")],
        action: Action::ActBits(-1),
        help: "act. bits -1 (this layer)",
    },
    Binding {
        keys: &[ch('L', "L")],
        action: Action::ActBits(1),
        help: "act. bits +1 (this layer)",
    },
    Binding {
        keys: &[ch('-', "-")],
        action: Action::AllBits(-1),
        help: "all layers: w and a bits -1",
    },
    Binding {
        keys: &[ch('+', "+"), ch('=', "=")],
        action: Action::AllBits(1),
        help: "all layers: w and a bits +1",
    },
    Binding {
        keys: &[ch('a', "a")],
        action: Action::NextAlternative,
        help: "pin the next best mapping",
    },
    Binding {
        keys: &[ch('A', "A")],
        action: Action::AutoMapping,
        help: "back to automatic mapping",
    },
    Binding {
        keys: &[ch('c', "c")],
        action: Action::Tile(Axis::Channels, -1),
        help: "manual tile: halve C_w",
    },
    Binding {
        keys: &[ch('C', "C")],
        action: Action::Tile(Axis::Channels, 1),
        help: "manual tile: double C_w",
    },
    Binding {
        keys: &[ch('r', "r")],
        action: Action::Tile(Axis::Rows, -1),
        help: "manual tile: H_w -1",
    },
    Binding {
        keys: &[ch('R', "R")],
        action: Action::Tile(Axis::Rows, 1),
        help: "manual tile: H_w +1",
    },
    Binding {
        keys: &[ch('x', "x")],
        action: Action::Tile(Axis::Cols, -1),
        help: "manual tile: W_w -1",
    },
    Binding {
        keys: &[ch('X', "X")],
        action: Action::Tile(Axis::Cols, 1),
        help: "manual tile: W_w +1",
    },
    Binding {
        keys: &[ch('P', "P")],
        action: Action::Tile(Axis::Direction, 1),
        help: "manual: packing direction",
    },
    Binding {
        keys: &[ch('f', "f")],
        action: Action::Tile(Axis::Factor, -1),
        help: "manual: packing factor -1",
    },
    Binding {
        keys: &[ch('F', "F")],
        action: Action::Tile(Axis::Factor, 1),
        help: "manual: packing factor +1",
    },
    Binding {
        keys: &[ch('N', "N")],
        action: Action::Tile(Axis::RingDegree, 1),
        help: "manual: next ring degree N",
    },
    Binding {
        keys: &[ch('p', "p")],
        action: Action::CycleProtocol,
        help: "next protocol",
    },
    Binding {
        keys: &[ch('n', "n")],
        action: Action::CycleLink,
        help: "next link (lan, wan)",
    },
    Binding {
        keys: &[ch('o', "o")],
        action: Action::CycleObjective,
        help: "next search objective",
    },
    Binding {
        keys: &[ch('s', "s")],
        action: Action::CycleSort,
        help: "next sort column",
    },
    Binding {
        keys: &[code(KeyCode::Tab, "Tab")],
        action: Action::TogglePane,
        help: "detail or chart pane",
    },
    Binding {
        keys: &[ch('v', "v")],
        action: Action::ChartScope,
        help: "chart: network, layer, front",
    },
    Binding {
        keys: &[ch('z', "z")],
        action: Action::CancelJob,
        help: "cancel the chart sweep",
    },
    Binding {
        keys: &[ch('u', "u")],
        action: Action::Undo,
        help: "undo",
    },
    Binding {
        keys: &[ch('w', "w")],
        action: Action::SaveMapping,
        help: "save mapping (TOML)",
    },
    Binding {
        keys: &[ch('e', "e")],
        action: Action::ExportReport,
        help: "export report (--export)",
    },
    Binding {
        keys: &[ch('i', "i")],
        action: Action::ExportChart,
        help: "export chart image (--chart)",
    },
    Binding {
        keys: &[ch('?', "?")],
        action: Action::Help,
        help: "this help",
    },
    Binding {
        keys: &[ch('q', "q"), code(KeyCode::Esc, "Esc")],
        action: Action::Quit,
        help: "quit (or close this help)",
    },
];

/// The action of a key, if any. Ctrl-C always quits.
pub fn lookup(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(Action::Quit);
    }
    KEYMAP
        .iter()
        .find(|b| b.keys.iter().any(|k| k.code == key.code))
        .map(|b| b.action)
}

/// The keys of a binding as the help shows them: `j / Down`.
pub fn key_labels(b: &Binding) -> String {
    b.keys
        .iter()
        .map(|k| k.label)
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_is_bound_twice() {
        let mut seen = Vec::new();
        for b in KEYMAP {
            for k in b.keys {
                assert!(!seen.contains(&k.code), "{:?} bound twice", k.code);
                seen.push(k.code);
            }
        }
    }

    #[test]
    fn vim_keys_and_arrows_agree() {
        let k = |c| lookup(KeyEvent::new(c, KeyModifiers::NONE));
        assert_eq!(k(KeyCode::Char('j')), Some(Action::Down));
        assert_eq!(k(KeyCode::Down), Some(Action::Down));
        assert_eq!(k(KeyCode::Char('k')), k(KeyCode::Up));
        assert_eq!(k(KeyCode::Char('h')), Some(Action::WeightBits(-1)));
        assert_eq!(k(KeyCode::Right), Some(Action::WeightBits(1)));
        assert_eq!(k(KeyCode::Char('y')), None);
    }

    #[test]
    fn shifted_letters_and_ctrl_c() {
        let shifted = KeyEvent::new(KeyCode::Char('L'), KeyModifiers::SHIFT);
        assert_eq!(lookup(shifted), Some(Action::ActBits(1)));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(lookup(ctrl_c), Some(Action::Quit));
        let plain_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(lookup(plain_c), Some(Action::Tile(Axis::Channels, -1)));
    }
}
