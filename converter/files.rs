//! The names of a job's files in the job backend's blobs (see
//! `docconv_backend::Blobs`): the converter chooses them, never a client.

/// The (first) document.
pub fn input(extension: &str) -> String {
    format!("input.{extension}")
}

/// The `index`-th further document of a merge (from 1).
pub fn more_input(index: usize, extension: &str) -> String {
    format!("input-{index}.{extension}")
}

/// The result.
pub fn output(extension: &str) -> String {
    format!("output.{extension}")
}

/// One document of a merge, converted, before the merge.
pub fn part(index: usize) -> String {
    format!("part-{index}.pdf")
}

/// The picture of a PDF result's first page, made on first request.
pub const PREVIEW: &str = "preview.png";
