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

/// The `index`-th further file of a submission (from 1) when it is an
/// attachment: whatever its name, it is stored under this one.
pub fn attachment(index: usize) -> String {
    format!("attachment-{index}")
}

/// The `index`-th further file of a submission (from 1) when it is the
/// image or PDF of a mark: whatever its name, it is stored under this one.
pub fn mark(index: usize) -> String {
    format!("mark-{index}")
}

/// The result.
pub fn output(extension: &str) -> String {
    format!("output.{extension}")
}

/// The result as kept: a name of its own for each conversion, so that a
/// second conversion of the same job that ends late (its first node lost
/// its lease mid-way) never replaces the result the job's record describes.
pub fn result(extension: &str) -> String {
    format!("result-{}.{extension}", docconv::ids::new_id())
}

/// Where results were kept before they had names of their own.
pub fn result_of(record: &docconv_backend::StoredJob, extension: &str) -> String {
    if record.result_file.is_empty() { output(extension) } else { record.result_file.clone() }
}

/// One document of a merge, converted, before the merge.
pub fn part(index: usize) -> String {
    format!("part-{index}.pdf")
}

/// The picture of a PDF result's first page, made on first request.
pub const PREVIEW: &str = "preview.png";
