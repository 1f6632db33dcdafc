//! The config file is read once per run, however many iterations there are,
//! observed from outside with inotify.

use inotify::{EventMask, Inotify, WatchMask};

use corral_tests::guests;

use crate::support::{Fixture, corral};

/// Runs `iterations` and counts how often the config file was opened.
fn opens_of_config(fx: &Fixture, iterations: &str) -> usize {
    let mut inotify = Inotify::init().expect("inotify");
    inotify.watches().add(fx.config(), WatchMask::OPEN).expect("watching the config");
    let job = fx.job(guests::SEED_MODEL, &[0], "param1 = 1.0\nparam2 = 1.0", "");
    let out = corral(&[&"run", &job, &"--iterations", &iterations, &"--max-workers", &"4"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut buffer = [0u8; 4096];
    let mut opens = 0;
    loop {
        match inotify.read_events(&mut buffer) {
            Ok(events) => {
                let n = events.filter(|e| e.mask.contains(EventMask::OPEN)).count();
                if n == 0 {
                    break;
                }
                opens += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("reading inotify events: {e}"),
        }
    }
    opens
}

#[test]
fn the_config_is_read_once_whatever_the_number_of_iterations() {
    let fx = Fixture::new(10_000);
    assert_eq!(opens_of_config(&fx, "5"), 1, "one iteration");
    assert_eq!(opens_of_config(&fx, "0..64"), 1, "64 iterations");
}
