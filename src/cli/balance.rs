//! `cometflow balance`: the account's balance, spending and request count, and each key's
//! remaining and used quota, from CometAPI's query host. The key never appears in output.

use clap::Args;

use crate::api::quota::{self, Balance};
use crate::error::{Failure, Outcome};

pub const AFTER_HELP: &str = "\
Reads GET https://query.cometapi.com/user/quota with COMETAPI_KEY (override the URL with
COMETAPI_QUOTA_URL). Amounts are USD; `unlimited` stands for CometAPI's -1.
Exit status: 0 when the balance was read, 1 otherwise, 3 when the simulator cannot start.";

#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Ask the built-in simulator instead (no key needed)
    #[arg(long)]
    pub simulate: bool,
}

pub fn balance(args: BalanceArgs) -> Outcome {
    super::runtime()?.block_on(async {
        // The simulator is kept alive until the balance is read.
        let (endpoint, _simulator) = super::endpoint(args.simulate).await?;
        let balance = quota::fetch(&endpoint).await.map_err(|message| {
            Failure::Failed(format!(
                "cannot read the balance: {message}; check `COMETAPI_KEY` and the network"
            ))
        })?;
        print!("{}", render(&balance));
        Ok(())
    })
}

fn render(b: &Balance) -> String {
    let mut s = format!(
        "balance:  {}\nused:     {}\nrequests: {}\n",
        quota::usd(b.total_quota),
        quota::usd(b.total_used_quota),
        b.request_count
    );
    if !b.keys.is_empty() {
        s.push_str("keys:\n");
        let width = b.keys.iter().map(|k| k.name.len()).max().unwrap_or(0);
        for k in &b.keys {
            s.push_str(&format!(
                "  {:width$}  remain {}  used {}\n",
                k.name,
                quota::usd(k.remain_quota),
                quota::usd(k.used_quota)
            ));
        }
    }
    s
}
