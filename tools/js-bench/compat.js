// Compatibility check of the published JavaScript client (npm `elarian` 0.2.25) against a local
// elarian-emulator: an app and a simulator connect over TLS TCP, the app runs a range of customer
// and app-wide commands (state, tags, secondary ids, app data, reminders, adoption, replay,
// payments, tag-wide commands, a voice call), and notification handlers (reminder, received SMS,
// received payment, payment status) answer the emulator. Replies and notifications are checked
// against what the Elarian service gives: a voice call is answered session_initiated, a payout
// is answered queued and then settled by the server (paymentStatus success), and a simulator
// settles a payment it reported by its own transaction id. Deleting a customer is not checked: the JavaScript client has no such method.
//
// Usage: NODE_EXTRA_CA_CERTS=emulator-ca.pem node compat.js HOST PORT [RUST_CUSTOMER]
// (`cargo xtask js-compat` starts the emulator and runs this). RUST_CUSTOMER is the number of a
// customer the Rust SDK tagged `written-by=rust` beforehand. Prints one line per check and exits
// 0 only when every check passed.
'use strict';

const { initializeClient, initializeSimulator } = require('elarian');

const [host = 'localhost', portArg = '5556', rustCustomer] = process.argv.slice(2);
const port = Number(portArg);

const credentials = {
    orgId: process.env.ELARIAN_ORG_ID || 'el_org_eu_1SJ2jx',
    appId: process.env.ELARIAN_APP_ID || 'el_app_WZFQdt',
    apiKey: process.env.ELARIAN_API_KEY
        || 'el_k_test_80922f5e467e9d5e8067795c263ba0e43c6ef6de7ffa1923aaa189d2772042be',
};
const PURSE_ID = 'el_prs_rL3IPZ';
const SMS = { number: '83044', channel: 'sms' };
const MPESA = { number: '83044', channel: 'cellular' };
const VOICE = { number: '+254711621711', channel: 'voice' };
const STEP_MS = 10000;

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([Promise.resolve(promise), timeout]).finally(() => clearTimeout(timer));
}

function assert(condition, message) {
    if (!condition) {
        throw new Error(message);
    }
}

// A promise and the function that resolves it, for handlers the test waits on.
function deferred() {
    let resolve;
    const promise = new Promise((r) => { resolve = r; });
    return { promise, resolve };
}

const results = [];

// Notifications keyed by transaction id: a check waits for the one of its own payment, whether
// it arrived before or after the check started waiting.
function keyedWaiters() {
    const arrived = new Map();
    const waiting = new Map();
    return {
        deliver(key, value) {
            const list = waiting.get(key);
            if (list && list.length > 0) {
                list.shift()(value);
            } else {
                arrived.set(key, [...(arrived.get(key) || []), value]);
            }
        },
        next(key) {
            const list = arrived.get(key);
            if (list && list.length > 0) {
                return Promise.resolve(list.shift());
            }
            return new Promise((resolve) => {
                waiting.set(key, [...(waiting.get(key) || []), resolve]);
            });
        },
    };
}

async function check(name, body) {
    try {
        const detail = await withTimeout(body(), STEP_MS, name);
        results.push({ name, ok: true });
        console.log(`ok    ${name}${detail ? `: ${detail}` : ''}`);
    } catch (err) {
        results.push({ name, ok: false });
        console.log(`FAIL  ${name}: ${err && err.message ? err.message : JSON.stringify(err)}`);
    }
}

async function main() {
    const app = await withTimeout(
        initializeClient({ ...credentials, allowNotifications: true }, { host, port }),
        STEP_MS,
        'app connect',
    );
    console.log('ok    app connects over TLS');
    const sim = await withTimeout(
        initializeSimulator(credentials, { host, port }),
        STEP_MS,
        'simulator connect',
    );
    console.log('ok    simulator connects over TLS');

    const number = `+2547${String(Date.now() % 100000000).padStart(8, '0')}`;
    const reminderSeen = deferred();
    const smsSeen = deferred();
    const simSendMessage = deferred();
    const simVoiceCall = deferred();
    const paymentStatuses = keyedWaiters();
    const receivedPayments = deferred();

    app.on('reminder', (notification, customer, appData, callback) => {
        reminderSeen.resolve({ notification, customer });
        callback(null, { ...(appData || {}), reminded: notification.reminder.key });
    });
    app.on('receivedSms', (notification, customer, appData, callback) => {
        smsSeen.resolve({ notification, customer });
        callback({ body: { text: 'thanks for your message' } }, appData);
    });
    sim.on('sendMessage', (notification, customer, appData, callback) => {
        simSendMessage.resolve(notification);
        callback(null, appData);
    });
    sim.on('makeVoiceCall', (notification, customer, appData, callback) => {
        simVoiceCall.resolve(notification);
        callback(null, appData);
    });
    app.on('paymentStatus', (notification, customer, appData, callback) => {
        paymentStatuses.deliver(notification.transactionId, notification);
        callback(null, appData);
    });
    app.on('receivedPayment', (notification, customer, appData, callback) => {
        receivedPayments.resolve(notification);
        callback(null, appData);
    });

    const customer = new app.Customer({ number, provider: 'cellular' });

    await check('customer.getState', async () => {
        const state = await customer.getState();
        assert(state.customerId, `no customerId in ${JSON.stringify(state)}`);
        return state.customerId;
    });
    await check('customer.updateMetadata + getMetadata', async () => {
        const reply = await customer.updateMetadata({ name: 'Ann', visits: 3 });
        assert(reply.status, `status ${JSON.stringify(reply)}`);
        const metadata = await customer.getMetadata();
        assert(metadata.name === 'Ann', `metadata ${JSON.stringify(metadata)}`);
        assert(metadata.visits === 3, `metadata ${JSON.stringify(metadata)}`);
    });
    await check('customer.deleteMetadata', async () => {
        await customer.deleteMetadata(['visits']);
        const metadata = await customer.getMetadata();
        assert(metadata.visits === undefined, `metadata ${JSON.stringify(metadata)}`);
    });
    await check('customer.updateTags + getTags', async () => {
        const reply = await customer.updateTags([{ key: 'tier', value: 'gold' }]);
        assert(reply.status, `status ${JSON.stringify(reply)}`);
        const tags = await customer.getTags();
        // No expiry is written and read back as 0.
        assert(
            tags.some((t) => t.key === 'tier' && t.value === 'gold' && t.expiration === 0),
            `tags ${JSON.stringify(tags)}`,
        );
    });
    await check('customer.updateTags with an expiry + getTags', async () => {
        const expiresAt = Math.floor(Date.now() / 1000) + 3600;
        await customer.updateTags([{ key: 'segment', value: 'b', expiresAt }]);
        const tags = await customer.getTags();
        assert(
            tags.some((t) => t.key === 'segment' && t.value === 'b' && t.expiration === expiresAt),
            `tags ${JSON.stringify(tags)}`,
        );
    });
    await check('customer.updateSecondaryIds + getSecondaryIds', async () => {
        await customer.updateSecondaryIds([{ key: 'passport', value: `P${number}` }]);
        const ids = await customer.getSecondaryIds();
        assert(ids.some((s) => s.key === 'passport'), `secondary ids ${JSON.stringify(ids)}`);
    });
    await check('customer.updateAppData + leaseAppData', async () => {
        const reply = await customer.updateAppData({ step: 1 });
        assert(reply.status, `status ${JSON.stringify(reply)}`);
        const leased = await customer.leaseAppData();
        assert(leased && leased.step === 1, `lease ${JSON.stringify(leased)}`);
    });
    await check('customer.deleteAppData', async () => {
        const reply = await customer.deleteAppData();
        assert(reply.status, `status ${JSON.stringify(reply)}`);
    });
    await check('customer.addReminder + cancelReminder', async () => {
        const later = Math.floor(Date.now() / 1000) + 3600;
        const added = await customer.addReminder({ key: 'later', remindAt: later, payload: 'x' });
        assert(added.status, `add ${JSON.stringify(added)}`);
        const cancelled = await customer.cancelReminder('later');
        assert(cancelled.status, `cancel ${JSON.stringify(cancelled)}`);
    });
    await check('reminder handler runs and its app data reply is stored', async () => {
        // The reply to addReminder is checked above; here only the notification matters.
        let replyNote = '';
        await customer.addReminder({
            key: 'soon',
            remindAt: Math.floor(Date.now() / 1000) + 1,
            payload: 'loan due',
        }).catch((err) => { replyNote = ` (addReminder reply unreadable: ${err.message})`; });
        const { notification } = await reminderSeen.promise;
        assert(notification.reminder.payload === 'loan due', `reminder ${JSON.stringify(notification)}`);
        // The handler's reply carries app data; give the emulator a moment to apply it.
        await new Promise((r) => { setTimeout(r, 200); });
        const leased = await customer.leaseAppData();
        assert(leased && leased.reminded === 'soon', `lease ${JSON.stringify(leased)}`);
        return replyNote;
    });
    await check('customer.sendMessage reaches the simulator', async () => {
        const reply = await customer.sendMessage(SMS, { body: { text: 'hello from js' } });
        assert(reply.messageId, `reply ${JSON.stringify(reply)}`);
        const notification = await simSendMessage.promise;
        return `${reply.status}; simulator saw ${JSON.stringify(notification).slice(0, 80)}`;
    });
    await check('simulator receiveMessage -> app receivedSms handler -> reply', async () => {
        const reply = await sim.receiveMessage(number, SMS, `sess-${Date.now()}`, [{ text: 'hi app' }]);
        assert(reply.status, `simulator reply ${JSON.stringify(reply)}`);
        const { notification } = await smsSeen.promise;
        assert(notification.text === 'hi app', `received ${JSON.stringify(notification)}`);
        return JSON.stringify(reply.message).slice(0, 80);
    });
    await check('customer.sendMessage with a voice dialplan is answered session_initiated', async () => {
        const reply = await customer.sendMessage(VOICE, {
            body: { voice: [{ say: { text: 'your loan is due', voice: 'female', playBeep: false } }] },
        });
        assert(reply.status === 'session_initiated', `reply ${JSON.stringify(reply)}`);
        assert(reply.sessionId, `reply ${JSON.stringify(reply)}`);
        // The client reads the simulator notification's session_id as a StringValue wrapper
        // (`.value`) though the schema has a plain string, so it loses it: only the number is
        // compared.
        const call = await simVoiceCall.promise;
        assert(call.customerNumber.number === number, `call ${JSON.stringify(call)}`);
        return reply.sessionId;
    });
    await check('app.initiatePayment (purse -> customer) is queued, then settled by the server', async () => {
        const reply = await app.initiatePayment(
            { purseId: PURSE_ID },
            { customerNumber: { number, provider: 'cellular' }, channelNumber: MPESA },
            { amount: 10, currencyCode: 'KES' },
            'compat',
        );
        assert(reply.status === 'queued', `reply ${JSON.stringify(reply)}`);
        assert(reply.transactionId, `reply ${JSON.stringify(reply)}`);
        const status = await paymentStatuses.next(reply.transactionId);
        assert(status.status === 'success', `paymentStatus ${JSON.stringify(status)}`);
        assert(status.customerId === reply.creditCustomerId, `paymentStatus ${JSON.stringify(status)}`);
        return `${reply.status} -> ${status.status}`;
    });
    await check('simulator updatePaymentStatus by the transaction id it gave receivePayment', async () => {
        const ownId = `mpesa-${Date.now()}`;
        const reported = await sim.receivePayment(
            ownId,
            number,
            MPESA,
            { amount: 25, currencyCode: 'KES' },
            'pending_validation',
        );
        assert(reported.status, `receivePayment ${JSON.stringify(reported)}`);
        const received = await receivedPayments.promise;
        assert(received.status === 'pending_validation', `receivedPayment ${JSON.stringify(received)}`);
        const updated = await sim.updatePaymentStatus(ownId, 'success');
        assert(updated.status, `updatePaymentStatus ${JSON.stringify(updated)}`);
        const status = await paymentStatuses.next(received.transactionId);
        assert(status.status === 'success', `paymentStatus ${JSON.stringify(status)}`);
        return `${ownId} -> ${received.transactionId}`;
    });
    await check('app.addCustomerReminderByTag + cancelCustomerReminderByTag', async () => {
        const tag = { key: 'tier', value: 'gold' };
        const later = Math.floor(Date.now() / 1000) + 3600;
        const added = await app.addCustomerReminderByTag(tag, { key: 'tagged', remindAt: later, payload: 'x' });
        assert(added.status, `add ${JSON.stringify(added)}`);
        const cancelled = await app.cancelCustomerReminderByTag(tag, 'tagged');
        assert(cancelled.status, `cancel ${JSON.stringify(cancelled)}`);
    });
    await check('app.sendMessageByTag', async () => {
        const reply = await app.sendMessageByTag({ key: 'tier', value: 'gold' }, SMS, { body: { text: 'promo' } });
        assert(reply.status, `reply ${JSON.stringify(reply)}`);
    });
    await check('app.generateAuthToken', async () => {
        const reply = await app.generateAuthToken();
        assert(reply.token, `reply ${JSON.stringify(reply)}`);
    });
    await check('customer.adoptState merges another customer into this one', async () => {
        const lastDigit = (Number(number.slice(-1)) + 1) % 10;
        const otherNumber = `${number.slice(0, -1)}${lastDigit}`;
        const other = new app.Customer({ number: otherNumber, provider: 'cellular' });
        await other.updateMetadata({ adopted: 'yes' });
        await other.updateTags([{ key: 'origin', value: 'other' }]);
        const reply = await customer.adoptState(other);
        assert(reply.status, `adopt ${JSON.stringify(reply)}`);
        const metadata = await customer.getMetadata();
        assert(metadata.adopted === 'yes', `metadata ${JSON.stringify(metadata)}`);
        const tags = await customer.getTags();
        assert(tags.some((t) => t.key === 'origin' && t.value === 'other'), `tags ${JSON.stringify(tags)}`);
        // The adopted number now leads to the surviving customer.
        const again = await new app.Customer({ number: otherNumber, provider: 'cellular' }).getState();
        assert(again.customerId === reply.customerId, `${otherNumber} is ${again.customerId}, not ${reply.customerId}`);
        return `${otherNumber} -> ${reply.customerId}`;
    });
    await check('app.replayReceivedMessage is kept in the customer history', async () => {
        const text = `replayed ${Date.now()}`;
        const reply = await app.replayReceivedMessage(
            { number, provider: 'cellular' },
            SMS,
            {
                messageId: `provider-${Date.now()}`,
                provider: 'at',
                receivedAt: Math.floor(Date.now() / 1000),
                parts: [{ text }],
                cost: { amount: 0, currencyCode: 'KES' },
            },
        );
        assert(reply.status, `reply ${JSON.stringify(reply)}`);
        const state = await customer.getState();
        const messages = (state.messagingState && state.messagingState.messasges) || [];
        const found = messages.some((m) => m.received
            && m.received.partsList.some((part) => part.text === text));
        assert(found, `no replayed message among ${messages.length}: ${JSON.stringify(messages).slice(0, 200)}`);
    });
    if (rustCustomer) {
        await check('customer.getTags of a customer the Rust SDK tagged', async () => {
            const other = new app.Customer({ number: rustCustomer, provider: 'cellular' });
            const tags = await other.getTags();
            assert(tags.some((t) => t.key === 'written-by' && t.value === 'rust'), `tags ${JSON.stringify(tags)}`);
        });
    }
    await check('customer.deleteTags', async () => {
        await customer.deleteTags(['tier']);
        const tags = await customer.getTags();
        assert(!tags.some((t) => t.key === 'tier'), `tags ${JSON.stringify(tags)}`);
    });

    sim.disconnect();
    app.disconnect();
    const failed = results.filter((r) => !r.ok);
    console.log(`${results.length - failed.length}/${results.length} checks passed`);
    process.exit(failed.length === 0 ? 0 : 1);
}

main().catch((err) => {
    console.error(`compat check failed: ${err && err.stack ? err.stack : JSON.stringify(err)}`);
    process.exit(1);
});
