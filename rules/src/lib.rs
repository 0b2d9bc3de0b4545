//! The mvsync rule language: typed values, expressions (parser, functions,
//! evaluation), scoping filters, and the compiled form of sync rules and
//! their attribute flows.
//!
//! Invariant: this crate is pure. It performs no I/O, owns no store and knows
//! no connector; time and uniqueness reach it through [`Env`].

pub mod dn;
pub mod env;
pub mod error;
pub mod expr;
pub mod functions;
pub mod rule;
pub mod value;

pub use dn::Dn;
pub use env::{Env, MapEnv, ReadError};
pub use error::{line_col, EvalError, ParseError, Span};
pub use expr::Expr;
pub use rule::{
    order_flows, target_attribute, Deprovision, Direction, Flow, FlowCycle, JoinCriterion,
    NullHandling, Provision, Rule, TARGET_PREFIX,
};
pub use value::{Value, ValueType};
