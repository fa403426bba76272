import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isErrorBody, RestHarness } from "./helpers-rest.js";

// NetBird's clients send every field NetBird's request schemas define (and
// its dashboard a few more). Starling accepts each of them: it uses the
// value, or, for a feature it does not have, accepts only the value that
// means "off" and refuses any other with a 400 that says what is not
// supported. Fields NetBird does not define stay refused, so typos are caught.

let h: RestHarness;
let peerId: string;
let otherPeerId: string;

beforeAll(async () => {
	h = await RestHarness.create();
	const key = await h.createSetupKey();
	peerId = (await h.registerPeer(key.key, "web-1")).id;
	otherPeerId = (await h.registerPeer(key.key, "db-1")).id;
});
afterAll(async () => {
	await h.close();
});

/** Sends each body; each must be a 400 {message, code} matching its pattern, changing nothing. */
async function expectRefusals(
	method: string,
	url: string,
	cases: [Record<string, unknown>, RegExp][],
): Promise<void> {
	const before = await h.snapshot();
	for (const [body, message] of cases) {
		const res = await h.request(method, url, { body });
		const where = `${method} ${url} ${JSON.stringify(body).slice(0, 200)}`;
		expect(res.status, `${where}: ${res.text}`).toBe(400);
		expect(isErrorBody(res), where).toBe(true);
		expect(res.json.message, where).toMatch(message);
	}
	expect(await h.snapshot()).toBe(before);
}

describe("setup keys", () => {
	it("creation takes revoked: false (NetBird's dashboard sends it); true is refused", async () => {
		const res = await h.request("POST", "/api/setup-keys", {
			body: { name: "k", type: "reusable", expires_in: 0, auto_groups: [], revoked: false },
		});
		expect(res.status).toBe(200);
		expect(res.json.revoked).toBe(false);
		await expectRefusals("POST", "/api/setup-keys", [
			[{ name: "k", type: "reusable", revoked: true }, /cannot be created revoked/],
			[
				{ name: "k", type: "reusable", allow_extra_dns_labels: true },
				/extra DNS labels are not supported/,
			],
			[{ name: "k", type: "reusable", revoke: false }, /Unrecognized key.*revoke/],
		]);
	});

	it("update takes the creation-time fields with their current values only", async () => {
		const key = await h.createSetupKey({ type: "one-off", expires_in: 3600 });
		const url = `/api/setup-keys/${key.id}`;
		const same = {
			name: "renamed",
			type: "one-off",
			expires_in: 3600,
			usage_limit: 1,
			ephemeral: false,
			allow_extra_dns_labels: false,
			revoked: false,
			auto_groups: [],
		};
		const ok = await h.request("PUT", url, { body: same });
		expect(ok.status, ok.text).toBe(200);
		expect(ok.json).toMatchObject({ name: "renamed", type: "one-off", usage_limit: 1 });
		await expectRefusals("PUT", url, [
			[{ ...same, type: "reusable" }, /type cannot be changed after the key is created/],
			[{ ...same, expires_in: 0 }, /expires_in cannot be changed .* \(it is 3600\)/],
			[{ ...same, usage_limit: 5 }, /usage_limit cannot be changed/],
			[{ ...same, ephemeral: true }, /ephemeral cannot be changed/],
			[{ ...same, allow_extra_dns_labels: true }, /extra DNS labels are not supported/],
			[{ ...same, expire_in: 3600 }, /Unrecognized key.*expire_in/],
		]);
	});
});

describe("peers", () => {
	it("update takes peerId, ip and the off values of features Starling lacks", async () => {
		const url = `/api/peers/${peerId}`;
		const peer = (await h.request("GET", url)).json;
		const body = {
			peerId,
			name: "web-01",
			ssh_enabled: false,
			login_expiration_enabled: false,
			inactivity_expiration_enabled: false,
			approval_required: false,
			ip: peer.ip,
		};
		const ok = await h.request("PUT", url, { body });
		expect(ok.status, ok.text).toBe(200);
		expect(ok.json.name).toBe("web-01");
		await expectRefusals("PUT", url, [
			[{ ...body, peerId: otherPeerId }, /peerId must be the id in the path/],
			[{ ...body, ip: "100.64.255.254" }, /address cannot be chosen: it stays/],
			[{ ...body, ipv6: "fd00::1" }, /IPv6 overlay addresses are not supported/],
			[{ ...body, approval_required: true }, /peer approval is not supported/],
			[{ ...body, inactivity_expiration_enabled: true }, /inactivity expiration is not supported/],
			[{ ...body, sshEnabled: true }, /Unrecognized key.*sshEnabled/],
		]);
	});
});

describe("policies", () => {
	it("take query and source_posture_checks empty; refuse what they cannot enforce, saying why", async () => {
		const all = await h.allGroupId();
		const rule = {
			name: "r",
			enabled: true,
			action: "accept",
			bidirectional: true,
			protocol: "all",
			sources: [all],
			destinations: [all],
		};
		const body = { name: "p", enabled: true, query: "", source_posture_checks: [], rules: [rule] };
		const ok = await h.request("POST", "/api/policies", { body });
		expect(ok.status, ok.text).toBe(200);
		const url = `/api/policies/${ok.json.id}`;
		expect((await h.request("PUT", url, { body })).status).toBe(200);
		await expectRefusals("PUT", url, [
			[{ ...body, source_posture_checks: ["chk"] }, /posture checks are not supported/],
			[{ ...body, query: "allow all" }, /policy queries are not supported/],
			[{ ...body, rules: [{ ...rule, protocol: "netbird-ssh" }] }, /netbird-ssh is not supported/],
			[
				{ ...body, rules: [{ ...rule, authorized_groups: { [all]: ["root"] } }] },
				/authorized groups .* are not supported/,
			],
			[
				{ ...body, rules: [{ ...rule, destinationResource: { id: "r", type: "host" } }] },
				/network resources .*not supported/,
			],
			[{ ...body, rules: [{ ...rule, action: "drop" }] }, /drop rules are not supported/],
			[{ ...body, posture_checks: [] }, /Unrecognized key.*posture_checks/],
		]);
	});
});

describe("accounts", () => {
	it("take every NetBird setting at the value Starling has; refuse others, saying why", async () => {
		const url = `/api/accounts/${h.account.id}`;
		const account = (await h.request("GET", url)).json;
		const settings = {
			...account.settings,
			groups_propagation_enabled: false,
			jwt_groups_enabled: false,
			jwt_groups_claim_name: "",
			jwt_allow_groups: [],
			routing_peer_dns_resolution_enabled: false,
			extra: {
				peer_approval_enabled: false,
				user_approval_required: false,
				network_traffic_logs_enabled: false,
				network_traffic_logs_groups: [],
				network_traffic_packet_counter_enabled: false,
			},
			lazy_connection_enabled: false,
			auto_update_version: "",
			auto_update_always: false,
			metrics_push_enabled: false,
			agent_network_only: false,
			dashboard_features: { agent_network: false },
			embedded_idp_enabled: false,
			local_auth_disabled: false,
			local_mfa_enabled: false,
			ipv6_enabled_groups: [],
		};
		const ok = await h.request("PUT", url, {
			body: { settings, onboarding: account.onboarding },
		});
		expect(ok.status, ok.text).toBe(200);
		expect(ok.json).toEqual(account);
		await expectRefusals("PUT", url, [
			[
				{ settings: { ...settings, dns_domain: "example.org" } },
				/DNS domain is set by the installation/,
			],
			[{ settings: { ...settings, peer_expose_enabled: true } }, /peers cannot expose services/],
			[{ settings: { ...settings, peer_expose_groups: ["g"] } }, /peers cannot expose services/],
			[
				{ settings: { ...settings, lazy_connection_enabled: true } },
				/lazy connections are not supported/,
			],
			[{ settings: { ...settings, jwt_groups_enabled: true } }, /JWT groups are not supported/],
			[{ settings: { ...settings, network_range_v6: "fd00::/64" } }, /IPv6 overlay networks/],
			[
				{ settings: { ...settings, extra: { ...settings.extra, peer_approval_enabled: true } } },
				/peer approval is not supported/,
			],
			[{ settings: { ...settings, peer_inactivity_expiration: 600 } }, /inactivity expiration/],
			[
				{ settings, onboarding: { signup_form_pending: true, onboarding_flow_pending: false } },
				/there is no sign-up form/,
			],
			[{ settings: { ...settings, lazy_connections_enabled: false } }, /Unrecognized key/],
		]);
	});
});

describe("groups", () => {
	it("list takes NetBird's name filter", async () => {
		await h.createGroup("ops");
		const res = await h.request("GET", "/api/groups?name=ops");
		expect(res.json.map((g: { name: string }) => g.name)).toEqual(["ops"]);
		expect((await h.request("GET", "/api/groups?name=nope")).json).toEqual([]);
		expect((await h.request("GET", "/api/groups")).json.length).toBeGreaterThan(1);
	});
});

describe("GET /api/peers/{peerId}/accessible-peers", () => {
	it("answers the peers the policies let it reach, and follows policy changes", async () => {
		// The Default policy (All to All): each sees the other.
		const url = `/api/peers/${peerId}/accessible-peers`;
		const res = await h.request("GET", url);
		expect(res.status).toBe(200);
		expect(res.json).toEqual([
			{
				id: otherPeerId,
				name: "db-1",
				ip: expect.any(String),
				dns_label: "db-1.starling.internal",
				user_id: "",
				os: "linux 6.1",
				country_code: "",
				city_name: "",
				geoname_id: 0,
				connected: false,
				last_seen: expect.any(String),
			},
		]);
		// Without any enabled policy, nobody is reachable.
		for (const p of (await h.request("GET", "/api/policies")).json) {
			await h.request("DELETE", `/api/policies/${p.id}`);
		}
		expect((await h.request("GET", url)).json).toEqual([]);
		const web = await h.createGroup("web", [peerId]);
		const db = await h.createGroup("db", [otherPeerId]);
		await h.createPolicy("web to db", [{ sources: [web.id], destinations: [db.id] }]);
		// A one-way rule: both ends see each other (the destination must answer).
		expect((await h.request("GET", url)).json.map((p: { id: string }) => p.id)).toEqual([
			otherPeerId,
		]);
		const back = await h.request("GET", `/api/peers/${otherPeerId}/accessible-peers`);
		expect(back.json.map((p: { id: string }) => p.id)).toEqual([peerId]);
	});

	it("is 404 for another account's peer and for no peer; needs an admin token", async () => {
		const other = await h.addAccount();
		const theirs = await h.request("GET", `/api/peers/${peerId}/accessible-peers`, {
			token: other.owner.token,
		});
		expect(theirs.status).toBe(404);
		expect(isErrorBody(theirs)).toBe(true);
		expect((await h.request("GET", "/api/peers/Nothing00000/accessible-peers")).status).toBe(404);
		const member = await h.addUser("user");
		expect(
			(await h.request("GET", `/api/peers/${peerId}/accessible-peers`, { token: member.token }))
				.status,
		).toBe(403);
		expect(
			(await h.request("GET", `/api/peers/${peerId}/accessible-peers`, { token: null })).status,
		).toBe(401);
	});
});
