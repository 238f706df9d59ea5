//! One module per wire protocol; each builds the routes of a simulated provider.

use axum::Router;

use crate::plumbing::Sim;
use crate::SimProtocol;

mod anthropic;
mod bedrock;
mod bedrock_invoke;
mod gemini;
mod google_oauth;
mod openai;

pub(crate) use anthropic::conversation as anthropic_conversation;
pub(crate) use bedrock::conversation as bedrock_conversation;
pub(crate) use gemini::conversation as gemini_conversation;
pub(crate) use openai::conversation as openai_conversation;

/// The protocol routes for one simulated provider.
pub(crate) fn router(ctx: Sim) -> Router {
    match ctx.protocol {
        SimProtocol::OpenAi | SimProtocol::OpenAiCompatible | SimProtocol::AzureOpenAi => {
            openai::router(ctx)
        }
        SimProtocol::Anthropic => anthropic::router(ctx),
        SimProtocol::Bedrock => bedrock::router(ctx),
        SimProtocol::Gemini | SimProtocol::Vertex => gemini::router(ctx),
    }
}
