export { OPENAPI_PATH } from "./openapi.js";
export { BODY_LIMIT, buildRestApi, type RestApiDeps } from "./server.js";
