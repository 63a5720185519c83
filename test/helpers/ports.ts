export { freePort } from "../../operations/local/ports";
