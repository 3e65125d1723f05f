//! Links posternd with its segments on 2 MB boundaries, the program text
//! in a segment of its own: the front factory moves every 2 MB of that
//! text onto one transparent huge page (`factory/huge_text.rs`), and only
//! whole, aligned 2 MB can be moved. Unaligned, the text's 4.3 MB held one
//! such stretch, sometimes two; aligned, it holds two and a tail of a few
//! hundred KB. The file grows by the padding (zeros), not the image.

fn main() {
    println!("cargo:rustc-link-arg-bin=posternd=-Wl,-z,max-page-size=0x200000");
    println!("cargo:rustc-link-arg-bin=posternd=-Wl,-z,separate-code");
}
