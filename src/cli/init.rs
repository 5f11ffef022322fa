//! `cometflow init [TEMPLATE]`: writes a starter pipeline and a `.env.example`, never over
//! an existing file unless `--force`, then says what to run next.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::error::{Failure, Outcome};

/// The starter pipelines, embedded so the binary alone can scaffold a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// Two local steps, no API key needed
    Blank,
    /// Lyrics by an LLM, a Suno song and Kling clips merged into one mp4
    SongToVideo,
    /// A Midjourney image, upscaled, animated by Kling
    ImageToVideo,
    /// An LLM-written script voiced by text-to-speech, with show notes
    Podcast,
}

impl Template {
    fn name(self) -> &'static str {
        match self {
            Template::Blank => "blank",
            Template::SongToVideo => "song-to-video",
            Template::ImageToVideo => "image-to-video",
            Template::Podcast => "podcast",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Template::Blank => include_str!("../../templates/blank.yaml"),
            Template::SongToVideo => include_str!("../../templates/song-to-video.yaml"),
            Template::ImageToVideo => include_str!("../../templates/image-to-video.yaml"),
            Template::Podcast => include_str!("../../templates/podcast.yaml"),
        }
    }

    /// Provider templates call paid APIs; `--simulate` tries them offline.
    fn needs_key(self) -> bool {
        self != Template::Blank
    }
}

const ENV_EXAMPLE: &str = include_str!("../../templates/env.example");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The starter to write
    #[arg(value_enum, default_value_t = Template::Blank)]
    pub template: Template,
    /// The folder to write into (created if missing)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
}

pub fn init(args: InitArgs) -> Outcome {
    let text = scaffold(&args).map_err(Failure::Invalid)?;
    print!("{text}");
    Ok(())
}

/// Writes the files and returns what to tell the user.
fn scaffold(args: &InitArgs) -> Result<String, String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| {
        format!("cannot create `{}`: {e}; pick another folder with `--dir`", args.dir.display())
    })?;
    let file_name = format!("{}.yaml", args.template.name());
    // `./blank.yaml` reads worse than `blank.yaml` in the messages.
    let in_dir =
        |name: &str| if args.dir == Path::new(".") { PathBuf::from(name) } else { args.dir.join(name) };
    let pipeline = in_dir(&file_name);
    if pipeline.exists() && !args.force {
        return Err(format!(
            "`{}` already exists; pass `--force` to overwrite it, or `--dir` to write somewhere else",
            pipeline.display()
        ));
    }
    write(&pipeline, args.template.text())?;
    let mut out = format!("wrote {}\n", pipeline.display());

    let env = in_dir(".env.example");
    if env.exists() && !args.force {
        out.push_str(&format!("kept {} (already there)\n", env.display()));
    } else {
        write(&env, ENV_EXAMPLE)?;
        out.push_str(&format!("wrote {}\n", env.display()));
    }

    let shown = pipeline.display();
    out.push_str("\nnext:\n");
    out.push_str(&format!("  cometflow validate {shown}\n"));
    out.push_str(&format!("  cometflow run {shown} --simulate\n"));
    if args.template.needs_key() {
        out.push_str(&format!(
            "  cp {} .env   # add your COMETAPI_KEY, then run without --simulate\n",
            env.display()
        ));
    } else {
        out.push_str(&format!("  cometflow run {shown}\n"));
    }
    Ok(out)
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text)
        .map_err(|e| format!("cannot write `{}`: {e}; check the folder's permissions", path.display()))
}
