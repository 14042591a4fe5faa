//! What a key press asks the explorer to do. Actions are data: the keymap produces them,
//! [`crate::tui::app::App::update`] applies them.

/// A tiling axis of a manual mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Input channels per ciphertext (C_w), halved or doubled.
    Channels,
    /// Rows of a tile (H_w), one at a time.
    Rows,
    /// Columns of a tile (W_w), one at a time.
    Cols,
    /// The packing direction, cycled.
    Direction,
    /// Values packed per coefficient, one at a time.
    Factor,
    /// The ring degree N, cycled through the protocol's.
    RingDegree,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Channels => "C_w",
            Axis::Rows => "H_w",
            Axis::Cols => "W_w",
            Axis::Direction => "packing direction",
            Axis::Factor => "packing factor",
            Axis::RingDegree => "N",
        }
    }
}

/// One user intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// Select a row by its position in the table (a mouse click).
    Select(usize),
    /// Change the selected layer's weight bits by this step.
    WeightBits(i32),
    /// Change the selected layer's activation bits by this step.
    ActBits(i32),
    /// Change the weight and activation bits of every weighted layer by this step.
    AllBits(i32),
    CycleProtocol,
    CycleLink,
    CycleObjective,
    CycleSort,
    /// Pin the selected layer to the next of the best alternatives found by the search.
    NextAlternative,
    /// Return the selected layer to the protocol's own (automatic) mapping.
    AutoMapping,
    /// Turn one knob of the selected layer's mapping (pinning it manually).
    Tile(Axis, i32),
    /// Chart the whole network or the selected layer.
    ChartScope,
    /// Show the chart or the detail pane when the screen has room for only one.
    TogglePane,
    /// Stop the background chart sweep (the chart stays as it was).
    CancelJob,
    Undo,
    SaveMapping,
    ExportReport,
    /// Write the chart to an image file through the `plot` module (PNG or SVG).
    ExportChart,
    Help,
    Quit,
}
