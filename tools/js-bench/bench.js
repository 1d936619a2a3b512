// Measures the published JavaScript client (npm `elarian`) on the same command mix as the Rust
// end-to-end benchmark: alternating customer.updateMetadata and customer.getState, with 1 and 64
// commands in flight, against a local elarian-emulator.
//
// Usage: NODE_EXTRA_CA_CERTS=emulator-ca.pem node bench.js HOST PORT COMMANDS
// Prints one JSON line per concurrency level: {"client":"javascript","in_flight":N,"commands":C,"secs":S,"per_sec":R}
'use strict';

const { initializeClient } = require('elarian');

const [host = 'localhost', portArg = '5556', commandsArg = '2000'] = process.argv.slice(2);
const port = Number(portArg);
const total = Number(commandsArg);

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

async function run(client, inFlight) {
    const customers = [];
    for (let i = 0; i < inFlight; i += 1) {
        customers.push(new client.Customer({ number: `+2547000${String(i).padStart(5, '0')}`, provider: 'cellular' }));
    }
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
    await Promise.all(customers.map(worker));
    const secs = Number(process.hrtime.bigint() - started) / 1e9;
    return { client: 'javascript', in_flight: inFlight, commands: total, secs, per_sec: total / secs };
}

async function main() {
    const client = await withTimeout(initializeClient(config, { host, port }), 15000, 'connect');
    for (const inFlight of [1, 64]) {
        // eslint-disable-next-line no-await-in-loop
        const result = await withTimeout(run(client, inFlight), 600000, `run with ${inFlight} in flight`);
        console.log(JSON.stringify(result));
    }
    client.disconnect();
    process.exit(0);
}

main().catch((err) => {
    console.error(`javascript bench failed: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
