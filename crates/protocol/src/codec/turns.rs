//! Turn assembly shared by the protocols that want alternating roles (Anthropic, Bedrock,
//! Gemini): consecutive messages of one role merge into one turn, and tool results are kept
//! apart so they can lead the turn, as those protocols require.

/// One turn being assembled; `B` is the protocol's content block type.
pub(crate) struct Turn<B> {
    /// The protocol's role name.
    pub role: &'static str,
    /// Tool results, which must come first.
    pub results: Vec<B>,
    /// Everything else, in order.
    pub others: Vec<B>,
}

/// The last turn if it has `role`, else a new one.
pub(crate) fn turn<'t, B>(turns: &'t mut Vec<Turn<B>>, role: &'static str) -> &'t mut Turn<B> {
    if turns.last().is_none_or(|t| t.role != role) {
        turns.push(Turn {
            role,
            results: Vec::new(),
            others: Vec::new(),
        });
    }
    let last = turns.len() - 1;
    &mut turns[last]
}
