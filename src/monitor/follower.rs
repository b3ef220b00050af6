//! A clustered follower's serverz counts, read from its own store while
//! its engine (which answers snapshots) runs only on the leader.

/// What a store holds, counted from the store itself (a clustered
/// follower's serverz, while its engine does not run).
pub(super) struct Counted {
    pub(super) clients: usize,
    pub(super) subs: usize,
    pub(super) channels: usize,
    pub(super) msgs: u64,
    pub(super) bytes: u64,
}

pub(super) fn count_store(
    store: &dyn crate::store::Store,
    overhead: u64,
) -> crate::store::Result<Counted> {
    let names = store.channel_names()?;
    let mut counted = Counted {
        clients: store.clients()?.len(),
        subs: 0,
        channels: names.len(),
        msgs: 0,
        bytes: 0,
    };
    for name in names {
        let c = store.open_channel(&name)?;
        let st = c.state();
        counted.msgs += st.msgs;
        counted.bytes += st.bytes + overhead * st.msgs;
        counted.subs += c.subs()?.len();
    }
    Ok(counted)
}
