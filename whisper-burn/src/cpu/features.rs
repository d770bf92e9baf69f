//! The one place that asks the CPU what it can run. Every kernel dispatches on these
//! flags at run time, so one binary runs the widest kernels each machine has (AVX2-only
//! AMD, AVX-512/VNNI Intel) and the portable ones elsewhere; the results are the same
//! bits on every level (each level does the same fused multiply-adds in the same order).
use std::sync::OnceLock;

/// Instruction-set extensions the kernels use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuFeatures {
    pub avx2: bool,
    pub fma: bool,
    pub f16c: bool,
    pub avx512f: bool,
    pub avx512dq: bool,
    pub avx512bw: bool,
    pub avx512vl: bool,
    pub avx512vnni: bool,
}

impl CpuFeatures {
    fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            Self {
                avx2: is_x86_feature_detected!("avx2"),
                fma: is_x86_feature_detected!("fma"),
                f16c: is_x86_feature_detected!("f16c"),
                avx512f: is_x86_feature_detected!("avx512f"),
                avx512dq: is_x86_feature_detected!("avx512dq"),
                avx512bw: is_x86_feature_detected!("avx512bw"),
                avx512vl: is_x86_feature_detected!("avx512vl"),
                avx512vnni: is_x86_feature_detected!("avx512vnni"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::default()
    }

    /// AVX2 with hardware FMA (the AVX2 kernels of every module).
    pub fn avx2_fma(&self) -> bool {
        self.avx2 && self.fma
    }

    /// The AVX-512 integer dot-product kernels (int8 x uint8 -> int32).
    pub fn vnni(&self) -> bool {
        self.avx512f && self.avx512bw && self.avx512vl && self.avx512vnni
    }

    /// One line for logs and benchmark records.
    pub fn summary(&self) -> String {
        let names = [
            (self.vnni(), "avx512-vnni"),
            (self.avx512f, "avx512f"),
            (self.avx2_fma(), "avx2+fma"),
            (self.f16c, "f16c"),
        ];
        let on: Vec<&str> = names.iter().filter(|(b, _)| *b).map(|(_, n)| *n).collect();
        if on.is_empty() {
            "portable".into()
        } else {
            on.join(" ")
        }
    }
}

/// This CPU's features, detected on first use.
pub fn features() -> &'static CpuFeatures {
    static FEATURES: OnceLock<CpuFeatures> = OnceLock::new();
    FEATURES.get_or_init(CpuFeatures::detect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_agrees_with_the_standard_library() {
        let f = features();
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(f.avx2, is_x86_feature_detected!("avx2"));
            assert_eq!(f.fma, is_x86_feature_detected!("fma"));
            assert_eq!(f.avx512f, is_x86_feature_detected!("avx512f"));
        }
        assert_eq!(
            f.vnni(),
            f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni
        );
        assert!(!f.summary().is_empty());
    }
}
