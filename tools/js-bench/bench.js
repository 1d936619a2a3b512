// Measures the published JavaScript client (npm `elarian`) on the same command mix as the Rust
// end-to-end benchmark: alternating customer.updateMetadata and customer.getState, with 1 and 64
// commands in flight, against a local elarian-emulator, after the same warm-up (128 commands).
//
// Usage: NODE_EXTRA_CA_CERTS=emulator-ca.pem node bench.js HOST PORT COMMANDS [LEVELS]
// LEVELS: the concurrency levels to measure, comma-separated (default 1,64).
// Prints one JSON line per concurrency level: {"client":"javascript","in_flight":N,"commands":C,"secs":S,"per_sec":R}
'use strict';

const { initializeClient } = require('elarian');

const [host = 'localhost', portArg = '5556', commandsArg = '2000', levelsArg = '1,64'] = process.argv.slice(2);
const port = Number(portArg);
const total = Number(commandsArg);
const levels = levelsArg.split(',').map(Number);
if (!Number.isInteger(total) || total <= 0 || levels.some((n) => !Number.isInteger(n) || n <= 0)) {
    console.error(`usage: node bench.js HOST PORT COMMANDS [LEVELS], got ${process.argv.slice(2).join(' ')}`);
    process.exit(2);
}

const config = {
    orgId: process.env.ELARIAN_ORG_ID || 'el_org_eu_1SJ2jx',
    appId: process.env.ELARIAN_APP_ID || 'el_app_WZFQdt',
    apiKey: process.env.ELARIAN_API_KEY
        || 'el_k_test_80922f5e467e9d5e8067795c263ba0e43c6ef6de7ffa1923aaa189d2772042be',
    allowNotifications: false,
};

function withTimeout(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Each worker drives its own customer; the command mix alternates by global command number.
async function run(customers, inFlight, total) {
    let issued = 0;
    const started = process.hrtime.bigint();
    async function worker(customer) {
        while (issued < total) {
            const n = issued;
            issued += 1;
            if (n % 2 === 0) {
                await customer.updateMetadata({ visits: String(n) });
            } else {
                await customer.getState();
            }
        }
    }
    await Promise.all(customers.slice(0, inFlight).map(worker));
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    return { client: 'javascript', in_flight: inFlight, commands: total, secs, per_sec: total / secs };
}

async function main() {
    const client = await withTimeout(initializeClient(config, { host, port }), 15000, 'connect');
    // Created once: the constructor sends a CreateCustomer command in the background, which
    // must not land inside a measurement.
    const customers = [];
    for (let i = 0; i < Math.max(64, ...levels); i += 1) {
        customers.push(new client.Customer({ number: `+2547000${String(i).padStart(5, '0')}`, provider: 'cellular' }));
    }
    // Warm-up, as the Rust side does: the JIT, the connection and the customers' creation stay
    // out of the figures.
    await withTimeout(run(customers, 64, 2 * 64), 60000, 'warm-up');
    for (const inFlight of levels) {
        // eslint-disable-next-line no-await-in-loop
        const result = await withTimeout(run(customers, inFlight, total), 600000, `run with ${inFlight} in flight`);
        console.log(JSON.stringify(result));
    }
    client.disconnect();
    process.exit(0);
}

main().catch((err) => {
    console.error(`javascript bench failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
