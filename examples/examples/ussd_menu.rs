//! A multi-step USSD menu whose session state lives in the customer's app data.
//!
//! ```text
//! *83044#  ->  Welcome Amina!          1 -> Your loan balance is KES 1,500.00.  0 -> back, 9 -> exit
//!              1. Check balance        2 -> Enter the amount to repay -> Repay KES 500.00?
//!              2. Repay loan                                             1. Confirm -> checkout
//! ```
//!
//! The app (`mod lender`) uses only `elarian-sdk`: each step of a session arrives as a
//! `ussd_session` notification with the customer's app data (which screen they are on), and the
//! reply is the next screen plus the new app data. Repaying starts a mobile-money checkout; its
//! payment status lowers the balance kept in the customer's metadata and sends a receipt SMS.
//!
//! With no arguments an embedded emulator runs, and a simulated phone (`mod phone`, with
//! `elarian-simulator`) walks through the menu and prints every screen. With `--endpoint …` the
//! app serves that server's customers until Ctrl-C; add `--simulate` to walk the menu there too.
//!
//! ```sh
//! cargo run --release --example ussd_menu
//! cargo run --release --example ussd_menu -- --endpoint tcp://127.0.0.1:5555 --simulate
//! ```

use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use elarian_examples::{ConnectionArgs, Server, UssdChannelArgs, ctrl_c, init_tracing, money};
use elarian_sdk::Elarian;

/// A USSD loan menu backed by Elarian app data.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Phone number of the (simulated) customer.
    #[arg(long, default_value = "+254700000042")]
    phone: String,
    #[command(flatten)]
    connection: ConnectionArgs,
    #[command(flatten)]
    channels: UssdChannelArgs,
}

const CURRENCY: &str = "KES";
const OPENING_BALANCE: f64 = 1_500.0;
const REPAYMENT: &str = "500";

/// The lender's app: the menu, the checkout and the receipt.
mod lender {
    use std::collections::HashMap;

    use elarian_examples::money;
    use elarian_sdk::{
        Cash, Customer, CustomerNumber, DataValue, Elarian, Message, MessagingChannel,
        MessagingChannelNumber, PaymentChannel, PaymentChannelNumber, PaymentCounterParty,
        PaymentStatus, UssdMenu,
    };
    use serde::{Deserialize, Serialize};

    /// Metadata key of the loan balance.
    pub const BALANCE: &str = "loan_balance";
    /// Metadata key of the customer's name.
    pub const NAME: &str = "name";

    /// Channel numbers and purse of the app.
    #[derive(Debug, Clone)]
    pub struct Settings {
        pub sms_number: String,
        pub payment_channel: String,
        pub purse_id: String,
        pub currency: String,
    }

    /// Which screen the customer is on.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "screen", rename_all = "snake_case")]
    enum Screen {
        Main,
        Balance,
        Amount,
        Confirm { amount: f64 },
        Done,
    }

    /// The customer's app data: the USSD session and a repayment waiting for its payment.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct MenuState {
        session: Option<String>,
        #[serde(flatten)]
        screen: Screen,
        pending_repayment: Option<f64>,
    }

    impl MenuState {
        fn read(app_data: Option<&DataValue>) -> Option<MenuState> {
            app_data.and_then(|d| d.to_serde().ok())
        }

        fn to_data(&self) -> Option<DataValue> {
            DataValue::from_serde(self).ok()
        }
    }

    /// Registers the handlers on `app`.
    pub fn register(app: &Elarian, settings: Settings) {
        let menu_settings = settings.clone();
        let menu_app = app.clone();
        app.on_ussd_session(move |notification, customer, app_data, responder| {
            let settings = menu_settings.clone();
            let app = menu_app.clone();
            async move {
                let session = notification.session_id.clone();
                let input = notification.input.text.clone().unwrap_or_default();
                let previous = MenuState::read(app_data.as_ref());
                let pending = previous.as_ref().and_then(|s| s.pending_repayment);
                // A new session (or one we know nothing about) starts at the main menu.
                let screen = match previous {
                    Some(state) if state.session == session && !input.trim().is_empty() => {
                        state.screen
                    }
                    _ => Screen::Main,
                };
                let fresh = input.trim().is_empty();
                let (menu, next, checkout) =
                    step(&customer, &settings, screen, input.trim(), fresh).await;
                let state = MenuState {
                    session,
                    screen: next,
                    pending_repayment: checkout.or(pending),
                };
                // Store the new screen with the reply: the next input comes with it.
                responder.reply(Some(menu), state.to_data());
                if let Some(amount) = checkout {
                    start_checkout(&app, &notification.customer_number, &settings, amount).await;
                }
            }
        });

        let payment_app = app.clone();
        app.on_payment_status(move |notification, customer, app_data, responder| {
            let settings = settings.clone();
            let app = payment_app.clone();
            async move {
                let (Some(customer), Some(mut state)) =
                    (customer, MenuState::read(app_data.as_ref()))
                else {
                    responder.acknowledge();
                    return;
                };
                let Some(amount) = state.pending_repayment else {
                    responder.acknowledge();
                    return;
                };
                if notification.status != PaymentStatus::Success && notification.status.is_success()
                {
                    // Still pending.
                    responder.acknowledge();
                    return;
                }
                state.pending_repayment = None;
                responder.reply(None, state.to_data());
                settle(&app, &customer, &settings, amount, notification.status).await;
            }
        });
    }

    async fn loan(customer: &Customer) -> (String, f64) {
        let metadata = customer.get_metadata().await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not read metadata");
            HashMap::new()
        });
        let name = metadata
            .get(NAME)
            .and_then(|v| v.to_serde::<String>().ok())
            .unwrap_or_else(|| "there".into());
        let balance = metadata
            .get(BALANCE)
            .and_then(|v| v.to_serde::<f64>().ok())
            .unwrap_or(0.0);
        (name, balance)
    }

    fn main_menu(name: &str, notice: &str) -> UssdMenu {
        UssdMenu::new(format!(
            "{notice}Welcome {name}!\n1. Check balance\n2. Repay loan"
        ))
    }

    /// One step of the menu: the screen to show, the customer's next screen, and the amount to
    /// check out if the customer just confirmed a repayment.
    async fn step(
        customer: &Customer,
        settings: &Settings,
        screen: Screen,
        input: &str,
        fresh: bool,
    ) -> (UssdMenu, Screen, Option<f64>) {
        let (name, balance) = loan(customer).await;
        let due = money(&settings.currency, balance);
        let amount_prompt = |notice: &str| {
            UssdMenu::new(format!("{notice}Enter the amount to repay (up to {due}):"))
        };
        match (screen, input) {
            (_, _) if fresh => (main_menu(&name, ""), Screen::Main, None),
            (Screen::Main, "1") => (
                UssdMenu::new(format!("Your loan balance is {due}.\n0. Back\n9. Exit")),
                Screen::Balance,
                None,
            ),
            (Screen::Main, "2") if balance <= 0.0 => (
                UssdMenu::terminal("You have no loan to repay. Goodbye."),
                Screen::Done,
                None,
            ),
            (Screen::Main, "2") => (amount_prompt(""), Screen::Amount, None),
            (Screen::Main, _) => (main_menu(&name, "Invalid choice.\n"), Screen::Main, None),
            (Screen::Balance, "0") => (main_menu(&name, ""), Screen::Main, None),
            (Screen::Balance, "9") => (UssdMenu::terminal("Goodbye."), Screen::Done, None),
            (Screen::Balance, _) => (
                UssdMenu::new(format!(
                    "Invalid choice.\nYour loan balance is {due}.\n0. Back\n9. Exit"
                )),
                Screen::Balance,
                None,
            ),
            (Screen::Amount, text) => match text.parse::<f64>() {
                Ok(amount) if amount.is_finite() && amount > 0.0 && amount <= balance => (
                    UssdMenu::new(format!(
                        "Repay {} from mobile money?\n1. Confirm\n2. Cancel",
                        money(&settings.currency, amount)
                    )),
                    Screen::Confirm { amount },
                    None,
                ),
                _ => (amount_prompt("Invalid amount.\n"), Screen::Amount, None),
            },
            (Screen::Confirm { amount }, "1") => (
                UssdMenu::terminal(format!(
                    "Request sent. Approve the payment of {} on your phone.",
                    money(&settings.currency, amount)
                )),
                Screen::Done,
                Some(amount),
            ),
            (Screen::Confirm { .. }, "2") => (
                UssdMenu::terminal("Cancelled. Goodbye."),
                Screen::Done,
                None,
            ),
            (Screen::Confirm { amount }, _) => (
                UssdMenu::new(format!(
                    "Invalid choice.\nRepay {}?\n1. Confirm\n2. Cancel",
                    money(&settings.currency, amount)
                )),
                Screen::Confirm { amount },
                None,
            ),
            (Screen::Done, _) => (UssdMenu::terminal("Goodbye."), Screen::Done, None),
        }
    }

    async fn start_checkout(
        app: &Elarian,
        number: &CustomerNumber,
        settings: &Settings,
        amount: f64,
    ) {
        let debit = PaymentCounterParty::Customer {
            customer_number: number.clone(),
            channel_number: PaymentChannelNumber::new(
                &settings.payment_channel,
                PaymentChannel::Cellular,
            ),
        };
        let credit = PaymentCounterParty::Purse {
            purse_id: settings.purse_id.clone(),
        };
        let value = Cash::new(&settings.currency, amount);
        let failure = match app
            .initiate_payment_with_narration(debit, credit, value, "loan repayment (USSD)")
            .await
        {
            Ok(reply) if reply.status.is_success() => return,
            Ok(reply) => format!("{:?}", reply.status),
            Err(error) => error.to_string(),
        };
        tracing::warn!(failure, "checkout not started");
        let text = format!("Your repayment could not be started ({failure}). Please try again.");
        send_sms(app, number, settings, text).await;
    }

    async fn settle(
        app: &Elarian,
        customer: &Customer,
        settings: &Settings,
        amount: f64,
        status: PaymentStatus,
    ) {
        let Some(number) = phone_of(customer).await else {
            return;
        };
        let text = if status == PaymentStatus::Success {
            let (_, balance) = loan(customer).await;
            let left = (balance - amount).max(0.0);
            let update = DataValue::from_serde(&left)
                .ok()
                .map(|v| (BALANCE.to_owned(), v));
            if let Err(error) = customer.update_metadata(update.into_iter().collect()).await {
                tracing::warn!(%error, "could not update the balance");
            }
            format!(
                "We received {}. Your loan balance is {}.",
                money(&settings.currency, amount),
                money(&settings.currency, left)
            )
        } else {
            format!(
                "Your repayment of {} did not go through ({status:?}).",
                money(&settings.currency, amount)
            )
        };
        send_sms(app, &number, settings, text).await;
    }

    /// Payment notifications carry the customer id only; the state has the number.
    async fn phone_of(customer: &Customer) -> Option<CustomerNumber> {
        if let Some(number) = customer.number() {
            return Some(number.clone());
        }
        match customer.get_state().await {
            Ok(state) => state.payment.customer_numbers.into_iter().next(),
            Err(error) => {
                tracing::warn!(%error, "could not read the customer's state");
                None
            }
        }
    }

    async fn send_sms(app: &Elarian, number: &CustomerNumber, settings: &Settings, text: String) {
        let sms = MessagingChannelNumber::new(&settings.sms_number, MessagingChannel::Sms);
        let by_number = app.customer(number.clone());
        if let Err(error) = by_number.send_message(sms, Message::text(text)).await {
            tracing::warn!(%error, "could not send the SMS");
        }
    }

    /// Loads the customer's loan (the lender's back office would do this).
    pub async fn seed(
        app: &Elarian,
        phone: &str,
        name: &str,
        balance: f64,
    ) -> Result<(), elarian_sdk::Error> {
        let customer = app.customer(CustomerNumber::cellular(phone));
        let balance =
            DataValue::from_serde(&balance).map_err(|e| elarian_sdk::Error::InvalidArgument {
                argument: "balance",
                reason: e.to_string(),
            })?;
        customer
            .update_metadata(HashMap::from([
                (NAME.to_owned(), DataValue::string(name)),
                (BALANCE.to_owned(), balance),
            ]))
            .await?;
        // A fresh start: no menu state from an earlier run.
        customer.delete_app_data().await?;
        Ok(())
    }
}

/// The customer's phone, played by the simulator: dials, types, reads the screens.
mod phone {
    use std::time::Duration;

    use anyhow::{Context as _, bail};
    use elarian_sdk::{
        InboundMessageBody, MessageBody, MessagingChannel, MessagingChannelNumber, PaymentStatus,
        UssdInput, UssdSessionStatus,
    };
    use elarian_simulator::Simulator;
    use tokio::sync::mpsc;

    /// A phone with a number, the USSD code it dials and an SMS inbox.
    pub struct Phone {
        simulator: Simulator,
        number: String,
        code: MessagingChannelNumber,
        inbox: mpsc::Receiver<String>,
    }

    impl Phone {
        /// Connects a simulator that approves every checkout and collects SMS.
        pub async fn connect(
            simulator: Simulator,
            number: &str,
            ussd_code: &str,
        ) -> anyhow::Result<Phone> {
            let (tx, inbox) = mpsc::channel(16);
            let owner = number.to_owned();
            simulator.on_send_message(move |sms| {
                let tx = tx.clone();
                let mine = sms.customer_number.number == owner;
                async move {
                    if let (true, Some(MessageBody::Text(text))) = (mine, sms.message.body) {
                        // A full inbox only drops SMS nobody reads.
                        let _ = tx.try_send(text);
                    }
                }
            });
            let approver = simulator.clone();
            simulator.on_checkout_payment(move |checkout| {
                let approver = approver.clone();
                async move {
                    // Approve after the simulator's handler returned, like a person would.
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if let Err(error) = approver
                            .update_payment_status(checkout.transaction_id, PaymentStatus::Success)
                            .await
                        {
                            tracing::warn!(%error, "could not approve the checkout");
                        }
                    });
                }
            });
            simulator
                .connect()
                .await
                .context("the simulator could not connect")?;
            Ok(Phone {
                simulator,
                number: number.to_owned(),
                code: MessagingChannelNumber::new(ussd_code, MessagingChannel::Ussd),
                inbox,
            })
        }

        /// Sends one USSD input (`None`: dial the code) and returns the screen shown.
        pub async fn ussd(
            &self,
            session: &str,
            input: Option<&str>,
        ) -> anyhow::Result<(String, bool)> {
            let shown = input.unwrap_or("dial");
            println!("\n[{}] > {shown}", self.code.number);
            let reply = self
                .simulator
                .receive_message(
                    &self.number,
                    self.code.clone(),
                    session,
                    vec![InboundMessageBody::Ussd(UssdInput {
                        text: input.map(str::to_owned),
                        status: UssdSessionStatus::Active,
                    })],
                )
                .await
                .with_context(|| format!("USSD input {shown:?} failed"))?;
            let Some(MessageBody::Ussd(menu)) = reply.message.and_then(|m| m.body) else {
                bail!("the app answered {shown:?} without a USSD screen");
            };
            for line in menu.text.lines() {
                println!("  | {line}");
            }
            if menu.is_terminal {
                println!("  (session ended)");
            }
            Ok((menu.text, menu.is_terminal))
        }

        /// Waits for the next SMS, at most `limit`.
        pub async fn next_sms(&mut self, limit: Duration) -> anyhow::Result<String> {
            let text = tokio::time::timeout(limit, self.inbox.recv())
                .await
                .context("no SMS arrived in time")?
                .context("the simulator stopped")?;
            println!("\n[SMS] {text}");
            Ok(text)
        }

        /// Disconnects.
        pub async fn hang_up(self) {
            self.simulator.disconnect().await;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let args = Args::parse();
    let server = Server::start(&args.connection).await?;
    println!(
        "USSD menu on {} (code {})",
        server.describe(),
        args.channels.ussd_code
    );
    let result = run(&args, &server).await;
    server.shutdown().await;
    result
}

async fn run(args: &Args, server: &Server) -> anyhow::Result<()> {
    let app = Elarian::new(server.config()).context("invalid app configuration")?;
    lender::register(
        &app,
        lender::Settings {
            sms_number: args.channels.sms_number.clone(),
            payment_channel: args.channels.payment_channel.clone(),
            purse_id: args.channels.purse_id.clone(),
            currency: CURRENCY.to_owned(),
        },
    );
    app.connect()
        .await
        .with_context(|| format!("the app could not connect to {}", server.target()))?;
    lender::seed(&app, &args.phone, "Amina", OPENING_BALANCE)
        .await
        .context("could not load the customer's loan")?;

    let result = if server.simulate() {
        walk_the_menu(args, server).await
    } else {
        println!("Serving USSD sessions; press Ctrl-C to stop.");
        ctrl_c().await;
        Ok(())
    };
    app.disconnect().await;
    result
}

/// Dials, checks the balance, repays 500 (with one typo on the way), waits for the receipt and
/// checks the new balance. Fails if any screen is not what the menu should show.
async fn walk_the_menu(args: &Args, server: &Server) -> anyhow::Result<()> {
    let simulator = elarian_simulator::Simulator::new(server.config())
        .context("invalid simulator configuration")?;
    let mut phone = phone::Phone::connect(simulator, &args.phone, &args.channels.ussd_code).await?;
    let opening = money(CURRENCY, OPENING_BALANCE);
    let remaining = money(CURRENCY, OPENING_BALANCE - 500.0);

    let walk = async {
        let first = "walkthrough-1";
        expect(phone.ussd(first, None).await?, "Welcome Amina!", false)?;
        expect(phone.ussd(first, Some("1")).await?, &opening, false)?;
        expect(phone.ussd(first, Some("0")).await?, "2. Repay loan", false)?;
        expect(
            phone.ussd(first, Some("2")).await?,
            "Enter the amount",
            false,
        )?;
        expect(
            phone.ussd(first, Some("five hundred")).await?,
            "Invalid amount",
            false,
        )?;
        expect(
            phone.ussd(first, Some(REPAYMENT)).await?,
            "1. Confirm",
            false,
        )?;
        expect(phone.ussd(first, Some("1")).await?, "Request sent", true)?;
        let receipt = phone.next_sms(Duration::from_secs(10)).await?;
        ensure!(
            receipt.contains(&remaining),
            "the receipt does not show the new balance {remaining}: {receipt:?}"
        );

        let second = "walkthrough-2";
        expect(phone.ussd(second, None).await?, "Welcome Amina!", false)?;
        expect(phone.ussd(second, Some("1")).await?, &remaining, false)?;
        expect(phone.ussd(second, Some("9")).await?, "Goodbye", true)?;
        anyhow::Ok(())
    };
    let result = match tokio::time::timeout(Duration::from_secs(60), walk).await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("the walkthrough timed out after 60 s")),
    };
    phone.hang_up().await;
    result?;
    println!("\nThe menu walkthrough passed: balance {opening} -> {remaining}.");
    Ok(())
}

fn expect(screen: (String, bool), wanted: &str, terminal: bool) -> anyhow::Result<()> {
    let (text, is_terminal) = screen;
    if !text.contains(wanted) {
        bail!("expected a screen with {wanted:?}, got {text:?}");
    }
    if is_terminal != terminal {
        bail!("screen {text:?}: terminal is {is_terminal}, expected {terminal}");
    }
    Ok(())
}
