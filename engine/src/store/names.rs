//! The name interner: attribute, object-type, rule and connector names are
//! stored once and referenced by a small [`Sym`] everywhere else.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::Sym;

/// Names in both directions, plus the ones not yet persisted.
#[derive(Default, Clone)]
pub struct Names {
    /// Fx-hashed: names come from the configuration and the connected
    /// systems' schemas, and are looked up on every attribute read.
    by_name: FxHashMap<Arc<str>, Sym>,
    by_sym: Vec<Arc<str>>,
    unsaved: Vec<Sym>,
}

impl Names {
    /// Restores a persisted name. Syms are dense: `sym` must be the next one.
    pub fn restore(&mut self, sym: Sym, name: &str) -> bool {
        if sym.0 as usize != self.by_sym.len() {
            return false;
        }
        let name: Arc<str> = name.into();
        self.by_sym.push(name.clone());
        self.by_name.insert(name, sym);
        true
    }

    /// The sym of `name`, allocating one if it is new.
    pub fn intern(&mut self, name: &str) -> Sym {
        if let Some(s) = self.by_name.get(name) {
            return *s;
        }
        let sym = Sym(self.by_sym.len() as u32);
        let name: Arc<str> = name.into();
        self.by_sym.push(name.clone());
        self.by_name.insert(name, sym);
        self.unsaved.push(sym);
        sym
    }

    /// The sym of `name`, if interned.
    pub fn lookup(&self, name: &str) -> Option<Sym> {
        self.by_name.get(name).copied()
    }

    /// The name of `sym`.
    pub fn name(&self, sym: Sym) -> Arc<str> {
        self.by_sym
            .get(sym.0 as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{}", sym.0).into())
    }

    /// Takes the names interned since the last call, to persist them.
    pub fn take_unsaved(&mut self) -> Vec<(Sym, Arc<str>)> {
        std::mem::take(&mut self.unsaved)
            .into_iter()
            .map(|s| (s, self.name(s)))
            .collect()
    }

    /// Forgets unsaved names (their commit failed); they will be re-saved by
    /// the next commit that uses them.
    pub fn requeue(&mut self, syms: impl IntoIterator<Item = Sym>) {
        self.unsaved.extend(syms);
    }
}
