//! `hequant import`: an ONNX model -> a network file, with a summary.

use super::emit;
use crate::onnx::{self, ImportOptions};
use clap::Args;
use std::path::PathBuf;

/// The formats of the import summary: the shared `--format` names of those it can write.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
pub enum SummaryFormat {
    /// Aligned text for a terminal (`text` is an old name of it).
    #[default]
    #[value(alias = "text")]
    Table,
    Json,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The ONNX model.
    pub file: PathBuf,
    /// Write the network file (TOML) here; without it only the summary is printed.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Input shape, batch first (e.g. 1x3x224x224), for files whose input is dynamic.
    #[arg(long)]
    pub input_shape: Option<String>,
    /// Treat unsupported operators as free (identity) and mark the network partial.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Name of the network (default: the file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Format of the summary on standard output (it is not a table: no csv or markdown).
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: SummaryFormat,
}

pub fn run(a: &ImportArgs) -> Result<(), String> {
    let opts = ImportOptions {
        input_shape: a
            .input_shape
            .as_deref()
            .map(onnx::parse_shape)
            .transpose()
            .map_err(|e| format!("--input-shape: {e}"))?,
        skip_unsupported: a.skip_unsupported,
        name: a.name.clone(),
        source: String::new(),
    };
    let imported = onnx::load(&a.file, &opts).map_err(|e| format!("{}: {e}", a.file.display()))?;
    let s = &imported.summary;
    if let Some(out) = &a.output {
        let comment = format!(
            "{}: imported from {} by `hequant import`.\n{}",
            imported.network.name,
            a.file.display(),
            s.text()
        );
        let text = crate::spec::network::to_toml(&imported.network, &comment);
        emit(&text, Some(out))?;
    }
    let text = match a.format {
        SummaryFormat::Table => {
            let mut t = format!("{}: {}\n", a.file.display(), imported.network.name);
            t.push_str(&s.text());
            if let Some(out) = &a.output {
                t.push_str(&format!("wrote {}\n", out.display()));
            }
            t
        }
        SummaryFormat::Json => {
            let mut v = serde_json::to_value(s).map_err(|e| e.to_string())?;
            if let Some(o) = v.as_object_mut() {
                o.insert("network".into(), imported.network.name.clone().into());
                o.insert(
                    "output".into(),
                    a.output.as_ref().map(|p| p.display().to_string()).into(),
                );
            }
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())? + "\n"
        }
    };
    emit(&text, None)
}
