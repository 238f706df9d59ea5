//! One pure codec per wire format; each translates to and from the canonical types.

pub mod openai_chat;
