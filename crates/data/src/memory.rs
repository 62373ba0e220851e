//! How much memory the machine can give: what the readers and the model builder check a
//! request against before allocating, so that a dataset or a model too large is an error
//! naming its cause rather than an out-of-memory kill (Linux overcommits: an allocation far
//! beyond the memory succeeds, and the process dies when it touches the pages).

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux), else `None` (no check).
pub fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}
