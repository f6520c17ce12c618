//! Writing the final PDF anew with qpdf: AES-256 encrypted when asked.

use super::tools::qpdf_in_place;
use crate::failure::Failure;
use docconv::proto::v1::PdfEncryption;
use std::path::Path;

/// Writes `pdf` anew, encrypted with `encryption` if given. Passwords
/// travel in an argument file readable only by us, never on a command line
/// other users can see.
///
/// Rewriting also drops earlier revisions: exiftool's edits are
/// incremental updates (reversible by design), which would leave the
/// values it replaced, such as LibreOffice's producer, in the file.
pub async fn rewrite(encryption: Option<&PdfEncryption>, pdf: &Path) -> Result<(), Failure> {
    let Some(encryption) = encryption else {
        return qpdf_in_place(pdf, &[]).await;
    };
    let yes_no = |allowed: bool| if allowed { "y" } else { "n" }.to_owned();
    let (owner, permissions) = if encryption.owner_password.is_empty() {
        // Only an open password: whoever opens the file may do anything,
        // and nobody can change that (the owner password is random).
        (docconv::ids::new_id(), Permissions::everything())
    } else {
        (encryption.owner_password.clone(), Permissions::of(encryption))
    };
    let options = [
        "--encrypt".into(),
        encryption.open_password.clone(),
        owner,
        "256".into(),
        format!("--print={}", if permissions.print { "full" } else { "none" }),
        format!("--extract={}", yes_no(permissions.copy)),
        format!("--modify-other={}", yes_no(permissions.edit)),
        format!("--annotate={}", yes_no(permissions.annotate)),
        format!("--form={}", yes_no(permissions.form)),
        format!("--assemble={}", yes_no(permissions.assemble)),
    ];
    // `--encrypt` takes its own options up to a "--", which `qpdf_in_place`
    // adds before the output.
    qpdf_in_place(pdf, &options).await
}

/// What a reader without the owner password may do.
#[derive(Debug, PartialEq)]
struct Permissions {
    print: bool,
    copy: bool,
    edit: bool,
    annotate: bool,
    form: bool,
    assemble: bool,
}

impl Permissions {
    fn everything() -> Permissions {
        Permissions { print: true, copy: true, edit: true, annotate: true, form: true, assemble: true }
    }

    /// Editing allows every lesser change, as it always has; annotating
    /// includes filling in forms, as PDF's permission bits have it.
    fn of(encryption: &PdfEncryption) -> Permissions {
        let edit = encryption.allow_editing;
        let annotate = edit || encryption.allow_annotating;
        Permissions {
            print: encryption.allow_printing,
            copy: encryption.allow_copying,
            edit,
            annotate,
            form: annotate || encryption.allow_filling_forms,
            assemble: edit || encryption.allow_assembling,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lesser_permissions_follow_the_greater() {
        let owner = |edit: &dyn Fn(&mut PdfEncryption)| {
            let mut encryption = PdfEncryption { owner_password: "o".into(), ..Default::default() };
            edit(&mut encryption);
            Permissions::of(&encryption)
        };
        let none =
            Permissions { print: false, copy: false, edit: false, annotate: false, form: false, assemble: false };
        assert_eq!(owner(&|_| {}), none);
        assert_eq!(
            owner(&|e| e.allow_editing = true),
            Permissions { print: false, copy: false, ..Permissions::everything() }
        );
        assert_eq!(owner(&|e| e.allow_annotating = true), Permissions { annotate: true, form: true, ..none });
        assert_eq!(owner(&|e| e.allow_filling_forms = true), Permissions { form: true, ..none });
        assert_eq!(owner(&|e| e.allow_assembling = true), Permissions { assemble: true, ..none });
    }
}
