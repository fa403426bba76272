import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	apiRoutes,
	isErrorBody,
	makeTargets,
	RestHarness,
	type RouteCase,
	type RouteTargets,
} from "./helpers-rest.js";

// Every route x every kind of caller, each with the outcome it must get.
// Each case acts on objects made for it alone, so that a DELETE that
// succeeds cannot change another case's outcome. A refusal changes nothing.

type Who = "owner" | "admin" | "user" | "no token" | "expired token" | "other account";
const WHO: Who[] = ["owner", "admin", "user", "no token", "expired token", "other account"];

/** Routes every authenticated user may call (about themselves). */
const SELF_SERVICE = new Set(["GET /api/users/current"]);
/** Token routes: a user may call them for themselves only; the table aims them at the owner. */
const TOKEN_ROUTES = (r: RouteCase) => r.pattern.startsWith("/api/users/:userId/tokens");

function expected(route: RouteCase, who: Who): number {
	const name = `${route.method} ${route.pattern}`;
	if (who === "no token" || who === "expired token") return 401;
	if (who === "owner" || who === "admin") return 200;
	if (who === "user") return SELF_SERVICE.has(name) ? 200 : 403;
	// Another account's owner: our objects do not exist for it; lists and
	// creations act on its own account.
	if (route.pattern.includes(":")) return 404;
	if (name === "POST /api/policies/check") return 404;
	if (name === "POST /api/routes/check") return 404; // our peer id
	// Our peer/group ids.
	if (name === "POST /api/groups" || name === "POST /api/policies" || name === "POST /api/routes")
		return 422;
	return 200;
}

let h: RestHarness;
const tokens = {} as Record<Who, string | null>;

beforeAll(async () => {
	h = await RestHarness.create();
	tokens.owner = h.owner.token;
	tokens.admin = (await h.addUser("admin")).token;
	tokens.user = (await h.addUser("user")).token;
	tokens["no token"] = null;
	tokens["expired token"] = (
		await h.addUser("owner", h.account, { tokenDays: 1, at: new Date(Date.now() - 2 * 86_400_000) })
	).token;
	tokens["other account"] = (await h.addAccount()).owner.token;
});
afterAll(async () => {
	await h.close();
});

describe("authorization matrix", () => {
	const sample = apiRoutes({
		keyId: "k",
		peerId: "p",
		otherPeerId: "q",
		userId: "u",
		tokenId: "t",
		groupId: "g",
		policyId: "pol",
		accountId: "a",
		memberId: "m",
		routeId: "r",
		networkId: "n",
		resourceId: "res",
		routerId: "rtr",
	});

	it("covers every route", () => {
		expect(sample).toHaveLength(57);
	});

	for (const [i, template] of sample.entries()) {
		it(`${template.method} ${template.pattern}: ${WHO.map((w) => `${w} ${expected(template, w)}`).join(", ")}`, async () => {
			for (const who of WHO) {
				const targets: RouteTargets = await makeTargets(h);
				const route = apiRoutes(targets)[i]!;
				const before = await h.snapshot();
				const res = await h.request(route.method, route.url, {
					token: tokens[who],
					body: route.body,
				});
				const want = expected(route, who);
				expect(res.status, `${who}: ${route.method} ${route.url}: ${res.text}`).toBe(want);
				if (want !== 200) {
					expect(isErrorBody(res), res.text).toBe(true);
					expect(await h.snapshot(), `${who} changed something`).toBe(before);
				} else if (who === "other account") {
					// Whatever it saw or made is its own: none of our ids appear.
					for (const id of Object.values(targets)) {
						if (id !== h.account.id) expect(res.text).not.toContain(id);
					}
				}
			}
		});
	}

	it("a user may manage its own tokens but not read the admin surface", async () => {
		const member = await h.addUser("user");
		const own = `/api/users/${member.user.id}/tokens`;
		expect((await h.request("GET", own, { token: member.token })).status).toBe(200);
		expect(
			(await h.request("GET", `${own}/${member.tokenId}`, { token: member.token })).status,
		).toBe(200);
		expect((await h.request("GET", "/api/users/current", { token: member.token })).json.id).toBe(
			member.user.id,
		);
		expect(TOKEN_ROUTES(sample.find((r) => r.pattern.includes("tokens"))!)).toBe(true);
	});
});
