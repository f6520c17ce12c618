//! What `docconv convert` shows while it works: a bar per file on a
//! terminal, a plain line per change otherwise (a log, a CI job), nothing
//! with `--json`. Everything goes to standard error; standard output is
//! for results.

use super::json::{stage_word, state_words};
use docconv::proto::v1::{Job, JobState};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines,
    Silent,
}

impl Mode {
    /// Bars on a terminal, lines otherwise; `--json` asks for silence.
    pub fn detect(json: bool) -> Mode {
        match (json, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Silent,
            (false, true) => Mode::Bars,
            (false, false) => Mode::Lines,
        }
    }
}

/// The display of a whole run; `file` adds a line for one file or merge.
pub struct Progress {
    mode: Mode,
    bars: MultiProgress,
    width: usize,
}

impl Progress {
    /// `names` are every file's shown name, to line the bars up.
    pub fn new(mode: Mode, names: &[String]) -> Progress {
        let target = match mode {
            Mode::Bars => ProgressDrawTarget::stderr(),
            Mode::Lines | Mode::Silent => ProgressDrawTarget::hidden(),
        };
        let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0).min(NAME_WIDTH);
        Progress { mode, bars: MultiProgress::with_draw_target(target), width }
    }

    pub fn file(&self, name: &str) -> FileProgress {
        let bar = (self.mode == Mode::Bars).then(|| {
            let bar = self.bars.add(ProgressBar::new(100));
            bar.set_style(style(self.width));
            bar.set_prefix(shortened(name));
            bar
        });
        FileProgress { mode: self.mode, name: name.to_owned(), bar, last: Mutex::new(String::new()) }
    }

    /// Prints a line above the bars (or simply, without them).
    pub fn println(&self, line: &str) {
        match self.mode {
            Mode::Bars => {
                if self.bars.println(line).is_err() {
                    eprintln!("{line}");
                }
            }
            Mode::Lines | Mode::Silent => eprintln!("{line}"),
        }
    }
}

/// Names longer than this are cut in the middle, so bars stay one line.
const NAME_WIDTH: usize = 32;

fn shortened(name: &str) -> String {
    let count = name.chars().count();
    if count <= NAME_WIDTH {
        return name.to_owned();
    }
    let keep = (NAME_WIDTH - 1) / 2;
    let head: String = name.chars().take(keep).collect();
    let tail: String = name.chars().skip(count - (NAME_WIDTH - 1 - keep)).collect();
    format!("{head}…{tail}")
}

fn style(width: usize) -> ProgressStyle {
    // The template is ours and fixed; it cannot fail to parse.
    ProgressStyle::with_template(&format!("{{prefix:<{width}}} [{{bar:30}}] {{msg}}"))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// One file's (or merge's) line.
pub struct FileProgress {
    mode: Mode,
    name: String,
    bar: Option<ProgressBar>,
    /// The last line printed in `Lines` mode, so each change prints once.
    last: Mutex<String>,
}

impl FileProgress {
    pub fn uploading(&self, sent: u64, total: u64) {
        let percent = percent(sent, total);
        self.show(
            percent,
            format!("uploading {}/{}", HumanBytes(sent), HumanBytes(total)),
            format!("uploading {}", HumanBytes(total)),
        );
    }

    pub fn job(&self, job: &Job) {
        let (percent, words) = match job.state() {
            JobState::Running => match &job.progress {
                Some(p) => (u64::from(p.percent.min(100)), format!("{} {}%", stage_word(p.stage()), p.percent)),
                None => (0, "running".to_owned()),
            },
            _ => (0, state_words(job)),
        };
        // Lines round progress to tens: a log wants the stages, not every step.
        let line = match &job.progress {
            Some(p) if job.state() == JobState::Running => {
                format!("{} {}%", stage_word(p.stage()), p.percent / 10 * 10)
            }
            _ => words.clone(),
        };
        self.show(percent, words, line);
    }

    pub fn downloading(&self, done: u64, total: u64) {
        self.show(
            percent(done, total),
            format!("downloading {}/{}", HumanBytes(done), HumanBytes(total)),
            format!("downloading {}", HumanBytes(total)),
        );
    }

    /// The end: `ok` keeps the bar full, otherwise it stays where it stopped.
    pub fn finish(&self, ok: bool, words: &str) {
        match &self.bar {
            Some(bar) if ok => bar.finish_with_message(words.to_owned()),
            Some(bar) => bar.abandon_with_message(words.to_owned()),
            None => self.line(words),
        }
    }

    /// `words` on the bar, or `line` printed if it differs from the last.
    fn show(&self, percent: u64, words: String, line: String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(percent);
                bar.set_message(words);
            }
            None => self.line(&line),
        }
    }

    fn line(&self, line: &str) {
        if self.mode != Mode::Lines {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if *last != line {
            eprintln!("{}: {line}", self.name);
            *last = line.to_owned();
        }
    }
}

fn percent(done: u64, total: u64) -> u64 {
    done.saturating_mul(100).checked_div(total).unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_in_the_middle() {
        assert_eq!(shortened("report.docx"), "report.docx");
        let long = format!("{}.docx", "a".repeat(60));
        let cut = shortened(&long);
        assert_eq!(cut.chars().count(), NAME_WIDTH);
        assert!(cut.starts_with("aaa") && cut.ends_with("a.docx") && cut.contains('…'), "{cut}");
    }
}
