//! Parsing the resource-limit strings users write ("512m", "0.5", "500m") into
//! the engine's units.

/// Bytes from a memory size: a number with an optional unit `b`, `k`, `m`, `g`
/// (powers of 1024, case-insensitive, an optional trailing `b`/`ib` allowed:
/// `512m`, `512MB`, `1GiB`, `1048576`).
pub(crate) fn parse_memory(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let unit = unit.trim();
    let scale: f64 = match unit {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "memory {text:?}: unknown unit {unit:?}; write e.g. \"512m\" or \"1g\""
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("memory {text:?} is not a size; write e.g. \"512m\" or \"1g\""))?;
    let bytes = (value * scale).round();
    // The engine refuses limits below 6 MiB with an unhelpful message; say it here.
    if bytes < 6.0 * 1024.0 * 1024.0 {
        return Err(format!("memory {text:?} is below the engine's minimum of 6m"));
    }
    if bytes > i64::MAX as f64 {
        return Err(format!("memory {text:?} is too large"));
    }
    Ok(bytes as i64)
}

/// Nano-CPUs from a CPU count: `"0.5"`, `"2"`, or millicpus `"500m"`.
pub(crate) fn parse_cpus(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let cpus: f64 = match t.strip_suffix('m') {
        Some(milli) => milli
            .parse::<f64>()
            .map(|m| m / 1000.0)
            .map_err(|_| format!("cpus {text:?} is not a number of millicpus; write e.g. \"500m\""))?,
        None => t
            .parse()
            .map_err(|_| format!("cpus {text:?} is not a number; write e.g. \"0.5\" or \"500m\""))?,
    };
    if !cpus.is_finite() || cpus <= 0.0 {
        return Err(format!("cpus {text:?} must be more than 0"));
    }
    Ok((cpus * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_memory("512MB").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_memory("1g").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_memory("10485760").unwrap(), 10 << 20);
        assert_eq!(parse_memory(" 64m ").unwrap(), 64 << 20);
    }

    #[test]
    fn memory_errors_say_what_to_write() {
        assert!(parse_memory("lots").unwrap_err().contains("\"512m\""));
        assert!(parse_memory("12x").unwrap_err().contains("unknown unit"));
        assert!(parse_memory("1k").unwrap_err().contains("minimum"));
        assert!(parse_memory("").is_err());
    }

    #[test]
    fn cpu_forms() {
        assert_eq!(parse_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus("500m").unwrap(), 500_000_000);
        assert_eq!(parse_cpus("250m").unwrap(), 250_000_000);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("half").unwrap_err().contains("\"0.5\""));
    }
}
