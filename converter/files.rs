//! The files of each job, in one directory per job under the data
//! directory.

use std::path::{Path, PathBuf};

/// The files of each job: `<root>/<id>/input.<ext>` and `output.<ext>`.
#[derive(Clone, Debug)]
pub struct JobFiles {
    root: PathBuf,
}

impl JobFiles {
    pub fn new(root: PathBuf) -> JobFiles {
        JobFiles { root }
    }

    /// The job's directory. Ids are checked by the caller (`ids::is_valid`)
    /// before they reach a path.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn input(&self, id: &str, extension: &str) -> PathBuf {
        self.dir(id).join(format!("input.{extension}"))
    }

    /// The `index`-th further document of a merge (from 1).
    pub fn more_input(&self, id: &str, index: usize, extension: &str) -> PathBuf {
        self.dir(id).join(format!("input-{index}.{extension}"))
    }

    pub fn output(&self, id: &str, extension: &str) -> PathBuf {
        self.dir(id).join(format!("output.{extension}"))
    }

    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_dir_all(self.dir(id));
    }

    /// The directory holding every job's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The names of every job directory on disk, whatever their records.
    pub fn dir_names(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
}
