//! Rebuilds the server when the web UI's build output changes: `rust-embed` embeds
//! `ui/dist` at compile time (api/ui.rs), and cargo does not otherwise see new or removed
//! files there (a rebuilt UI has new hashed asset names).
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
}
