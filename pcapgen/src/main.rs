//! `pcapgen OUTDIR` writes every scenario to `OUTDIR/<name>.pcap`;
//! `pcapgen --list` prints the scenario names and descriptions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "usage: pcapgen OUTDIR    write every scenario to OUTDIR/<name>.pcap\n       \
                     pcapgen --list    print scenario names and descriptions";

fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    for s in pcapgen::scenarios() {
        let path = dir.join(format!("{}.pcap", s.name));
        pcapgen::write_pcap(&path, &s.frames)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("{:>4} frames  {}", s.frames.len(), path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag] if flag == "--list" => {
            for s in pcapgen::scenarios() {
                println!("{:<24} {}", s.name, s.description);
            }
            ExitCode::SUCCESS
        }
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        [dir] if !dir.starts_with('-') => match write_all(&PathBuf::from(dir)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pcapgen: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
