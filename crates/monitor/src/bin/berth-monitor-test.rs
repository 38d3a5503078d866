//! A stand-in for the `berth` binary in this crate's tests: `monitor DIR` runs the monitor as
//! `berth monitor DIR` does; `spawn CONFIG BERTH_EXE` plays the daemon (spawns, prints the
//! state, then sleeps until killed).

use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("monitor") if args.len() == 3 => berth_monitor::run_monitor(Path::new(&args[2])),
        Some("spawn") if args.len() == 4 => {
            let text = std::fs::read_to_string(&args[2]).unwrap_or_default();
            let config: berth_monitor::MonitorConfig = match serde_json::from_str(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("bad config {}: {e}", args[2]);
                    std::process::exit(2);
                }
            };
            match berth_monitor::spawn(&config, Path::new(&args[3]), Vec::new()) {
                Ok(state) => println!("{}", serde_json::to_string(&state).unwrap_or_default()),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        _ => {
            eprintln!("usage: berth-monitor-test monitor DIR | spawn CONFIG BERTH_EXE");
            std::process::exit(2);
        }
    }
}
