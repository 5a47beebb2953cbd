//! Thumbnail benchmark, beside vipsthumbnail and ImageMagick, in one run.
//!
//! `cargo run --release --example bench_thumbs [-- DIR]` (default
//! `/tmp/benchdata/images`, made by `python3 ../shared/bench/gen_images.py`:
//! twelve 24-megapixel JPEGs). One thread each, batch mode (one process for
//! all images), page cache warm, peak RSS from `/usr/bin/time -v`, as in
//! `../shared/bench/thumbs.py`. Rows:
//! - appliance 360 px only (comparable with `vipsthumbnail -s 360`);
//! - appliance's thumbnail job (360 px thumbnail and 1280 px preview);
//! - vipsthumbnail, ImageMagick `mogrify -thumbnail` and with `jpeg:size`.
//!
//! Our rows run in a child process (this program with `--ours MODE DIR`) so
//! their RSS is their own.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

fn images(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "jpg" || e == "jpeg"));
    v.sort();
    v
}

fn ours(mode: &str, dir: &Path) -> anyhow::Result<()> {
    let out = std::env::temp_dir().join("appliance-bench-thumbs");
    std::fs::create_dir_all(&out)?;
    for (i, p) in images(dir).iter().enumerate() {
        match mode {
            "thumb" => {
                let jpeg = appliance::imaging::thumbnail_only(p, 100_000_000)
                    .map_err(anyhow::Error::msg)?;
                std::fs::write(out.join(format!("{i}_ours.jpg")), jpeg)?;
            }
            _ => {
                let r =
                    appliance::imaging::render_file(p, 100_000_000).map_err(anyhow::Error::msg)?;
                std::fs::write(out.join(format!("{i}_ours.jpg")), r.thumb)?;
                std::fs::write(out.join(format!("{i}_ours_1280.jpg")), r.preview)?;
            }
        }
    }
    Ok(())
}

/// Runs `cmd` under `/usr/bin/time -v`; returns (seconds, peak RSS MiB).
fn timed(cmd: Command) -> anyhow::Result<(f64, f64)> {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .envs(envs)
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        anyhow::bail!("failed: {err}");
    }
    let rss_kb: f64 = err
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    Ok((secs, rss_kb / 1024.0))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--ours") {
        return ours(&args[2], Path::new(&args[3]));
    }
    let dir = PathBuf::from(
        args.get(1)
            .cloned()
            .unwrap_or_else(|| "/tmp/benchdata/images".into()),
    );
    let files = images(&dir);
    if files.is_empty() {
        anyhow::bail!(
            "no JPEG in {}: run `python3 ../shared/bench/gen_images.py` first",
            dir.display()
        );
    }
    let n = files.len() as f64;
    let out = std::env::temp_dir().join("appliance-bench-thumbs-ref");
    std::fs::create_dir_all(&out)?;
    // Warm the page cache.
    for f in &files {
        let _ = std::fs::read(f)?;
    }
    let exe = std::env::current_exe()?;
    let mut rows: Vec<(String, anyhow::Result<(f64, f64)>)> = Vec::new();
    for (name, mode) in [
        ("appliance, 360 px only", "thumb"),
        ("appliance job, 360 + 1280 px", "job"),
    ] {
        let mut c = Command::new(&exe);
        c.args(["--ours", mode, dir.to_str().expect("utf-8 path")]);
        rows.push((name.into(), timed(c)));
    }
    let mut vips = Command::new("vipsthumbnail");
    vips.env("VIPS_CONCURRENCY", "1")
        .args(&files)
        .args(["-s", "360", "-o"])
        .arg(out.join("%s_vips.jpg[Q=85]"));
    rows.push(("vipsthumbnail -s 360".into(), timed(vips)));
    for (name, extra) in [
        ("ImageMagick mogrify -thumbnail", vec![]),
        (
            "ImageMagick mogrify jpeg:size=720",
            vec!["-define", "jpeg:size=720x720"],
        ),
    ] {
        let mut m = Command::new("/usr/bin/mogrify");
        m.env("MAGICK_THREAD_LIMIT", "1")
            .env("OMP_NUM_THREADS", "1")
            .arg("-path")
            .arg(&out)
            .args(extra)
            .args(["-thumbnail", "360x360", "-quality", "85"])
            .args(&files);
        rows.push((name.into(), timed(m)));
    }
    let reference = rows
        .iter()
        .find(|(n, _)| n.starts_with("vipsthumbnail"))
        .and_then(|(_, r)| r.as_ref().ok())
        .map(|(s, _)| n / s);
    println!(
        "\n| {} photos from {}, one thread, batch | images/s | peak RSS, MiB | rate / vipsthumbnail |",
        files.len(),
        dir.display()
    );
    println!("|---|---:|---:|---:|");
    for (name, r) in &rows {
        match r {
            Ok((secs, rss)) => println!(
                "| {name} | {:.1} | {rss:.0} | {} |",
                n / secs,
                reference.map_or("–".into(), |v| format!("{:.2}", (n / secs) / v))
            ),
            Err(e) => println!("| {name} | failed: {e} | | |"),
        }
    }
    Ok(())
}
