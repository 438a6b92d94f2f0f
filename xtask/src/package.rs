//! `cargo xtask package`: the publishable crates as a registry would receive them.
//!
//! 1. `cargo package --no-verify` of each library crate, in one command, so the providers
//!    resolve `integrations-core` from the freshly packed one: fails on missing metadata,
//!    a readme or license file that is not there, or a dependency no registry has.
//! 2. `cargo publish --dry-run -p integrations-core` verifies the root crate the way a
//!    registry would: the packed sources alone build. The other crates' verification
//!    would build the whole dependency tree once more from their packed copies (minutes
//!    on two cores) for what the workspace build already shows; their packing in step 1
//!    is what can differ from the workspace.

use crate::{Stop, cargo, run};

/// The published crates, in dependency order.
const PUBLISHED: [&str; 8] = [
    "integrations-core",
    "integrations-storage-diesel",
    "integrations-axum",
    "integrations-sandbox",
    "integrations-instagram",
    "integrations-tiktok",
    "integrations-reddit",
    "integrations-onlyfans",
];

pub(crate) fn run(args: &[String]) -> Result<(), Stop> {
    let allow_dirty = match args {
        [] => false,
        [a] if a == "--allow-dirty" => true,
        other => {
            return Err(Stop(format!(
                "package takes only --allow-dirty (for a work tree with uncommitted \
                 changes); got {other:?}"
            )));
        }
    };
    let mut pack = cargo();
    pack.args(["package", "--no-verify"]);
    for krate in PUBLISHED {
        pack.args(["-p", krate]);
    }
    let mut verify = cargo();
    verify.args(["publish", "--dry-run", "-p", PUBLISHED[0]]);
    if allow_dirty {
        pack.arg("--allow-dirty");
        verify.arg("--allow-dirty");
    }
    run::status(&mut pack)?;
    run::status(&mut verify)
}
