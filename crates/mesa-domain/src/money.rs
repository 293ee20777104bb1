//! Money as integer micro-dollars, so budgets add up exactly.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Sub};

use crate::ValidationError;

/// An amount of US dollars in millionths. Budgets and costs are summed with integer arithmetic,
/// so concurrent reservations never drift through floating-point rounding.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct MicroUsd(pub i64);

impl MicroUsd {
    /// Zero dollars.
    pub const ZERO: MicroUsd = MicroUsd(0);

    /// Whole and fractional dollars to micro-dollars, rounded to the nearest micro-dollar.
    /// Rejects negative, non-finite and absurdly large amounts, naming `field`.
    pub fn from_usd(field: &'static str, usd: f64) -> Result<Self, ValidationError> {
        if !usd.is_finite() {
            return Err(ValidationError::new(
                field,
                format!("{field} must be a finite number"),
            ));
        }
        if usd < 0.0 {
            return Err(ValidationError::new(
                field,
                format!("{field} must not be negative"),
            ));
        }
        // One billion dollars is far beyond any budget and keeps the product within i64.
        if usd > 1e9 {
            return Err(ValidationError::new(field, format!("{field} is too large")));
        }
        #[expect(clippy::cast_possible_truncation, reason = "bounded to 1e15 above")]
        Ok(MicroUsd((usd * 1_000_000.0).round() as i64))
    }

    /// The amount in dollars, for display and the wire.
    #[expect(
        clippy::cast_precision_loss,
        reason = "display only; exact below 2^53 micro-dollars"
    )]
    pub fn as_usd(self) -> f64 {
        self.0 as f64 / 1_000_000.0
    }

    /// True for zero, which in a limit means "unlimited".
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl Add for MicroUsd {
    type Output = MicroUsd;
    fn add(self, rhs: MicroUsd) -> MicroUsd {
        MicroUsd(self.0.saturating_add(rhs.0))
    }
}

impl AddAssign for MicroUsd {
    fn add_assign(&mut self, rhs: MicroUsd) {
        *self = *self + rhs;
    }
}

impl Sub for MicroUsd {
    type Output = MicroUsd;
    fn sub(self, rhs: MicroUsd) -> MicroUsd {
        MicroUsd(self.0.saturating_sub(rhs.0))
    }
}

impl Sum for MicroUsd {
    fn sum<I: Iterator<Item = MicroUsd>>(iter: I) -> MicroUsd {
        iter.fold(MicroUsd::ZERO, Add::add)
    }
}

impl fmt::Display for MicroUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.4}", self.as_usd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip() {
        assert_eq!(
            MicroUsd::from_usd("cost_usd", 1.25).unwrap(),
            MicroUsd(1_250_000)
        );
        assert_eq!(MicroUsd(1_250_000).as_usd(), 1.25);
        assert_eq!(
            MicroUsd::from_usd("cost_usd", 0.0000004).unwrap(),
            MicroUsd(0)
        );
    }

    #[test]
    fn bad_amounts_name_the_field() {
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e12] {
            let err = MicroUsd::from_usd("daily_cost_limit_usd", bad).unwrap_err();
            assert_eq!(err.field, "daily_cost_limit_usd");
            assert!(
                err.message.contains("daily_cost_limit_usd"),
                "{}",
                err.message
            );
        }
    }
}
