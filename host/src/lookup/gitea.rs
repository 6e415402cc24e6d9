// TEMPORARY STUB (replaced by the real client)
use crate::lookup::{Answer, CommitLookup};
use std::time::Duration;
pub struct Token(String);
impl Token {
    pub fn from_env() -> Option<Token> {
        std::env::var("GITEA_TOKEN").ok().map(Token)
    }
}
pub struct GiteaClient {
    _t: Option<Token>,
}
impl GiteaClient {
    pub fn new(_b: &str, t: Option<Token>, _d: Duration) -> anyhow::Result<Self> {
        Ok(GiteaClient { _t: t })
    }
}
pub struct BlockingGitea;
impl BlockingGitea {
    pub fn new(_c: GiteaClient) -> anyhow::Result<Self> {
        Ok(BlockingGitea)
    }
}
impl CommitLookup for BlockingGitea {
    fn commit(&self, _: &str, _: &str, _: &str) -> Answer {
        Answer::Unavailable("stub".into())
    }
}
