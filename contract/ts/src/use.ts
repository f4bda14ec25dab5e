// A small typed use of the client the frontend generates from our OpenAPI (openapi-typescript,
// default options). It only has to compile with `tsc --strict`: if the spec and the generator
// disagree (a field wrongly required, a reply without its type), this stops compiling.
import type { components, paths } from "./api";

type Schemas = components["schemas"];
type Json<Op> = Op extends { content: { "application/json": infer Body } } ? Body : never;

// Sign in: a form post to /auth/token, a TokenReply back.
type TokenForm = NonNullable<
  paths["/auth/token"]["post"]["requestBody"]
>["content"]["application/x-www-form-urlencoded"];
const signIn: TokenForm = { grant_type: "password", username: "sacramento.worker", password: "s3cret-words" };
type Token = Json<paths["/auth/token"]["post"]["responses"][200]>;
const token: Token = { access_token: "eyJ...", token_type: "bearer", expires_in: 900 };
const bearer: string = `Bearer ${token.access_token}`;

// List counties: a page of CountyRead.
type CountyPage = Json<paths["/api/v1/counties"]["get"]["responses"][200]>;
type CountyQuery = NonNullable<paths["/api/v1/counties"]["get"]["parameters"]["query"]>;
const query: CountyQuery = { limit: 100 };
function countyNames(page: CountyPage): string[] {
  return page.items.map((county: Schemas["CountyRead"]) => `${county.fips} ${county.name}`);
}

// File a MAC: description has a server default, so it may be left out.
type Filing = Json<NonNullable<paths["/api/v1/requests"]["post"]["requestBody"]>>;
const mac: Filing = {
  type: "mac",
  county: "06067",
  title: "Move a printer to room 214",
  details: { category: "move", location: "Sacramento, 2nd floor" },
};
type Filed = Json<paths["/api/v1/requests"]["post"]["responses"][201]>;
function number(filed: Filed): string {
  return filed.number;
}

// Read a problem: every error is RFC 9457 problem+json naming the field.
type Problem = Schemas["Problem"];
function firstField(problem: Problem): string | undefined {
  return problem.errors?.[0]?.field;
}
type Invalid = paths["/api/v1/requests"]["post"]["responses"][422]["content"]["application/problem+json"];
const invalid: Invalid = {
  type: "/problems/validation-error",
  title: "The request is not valid",
  status: 422,
  detail: "Check these fields: county.",
  instance: "/api/v1/requests",
  request_id: null,
  errors: [{ field: "county", message: "unknown county" }],
};

export const used = [signIn, bearer, query, countyNames, mac, number, firstField(invalid)];
