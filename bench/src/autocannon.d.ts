// The part of autocannon's API the benchmarks use (the package ships no types).
declare module "autocannon" {
	interface Options {
		url: string;
		connections?: number;
		duration?: number;
		/** Stop after this many requests instead of after `duration`. */
		amount?: number;
		headers?: Record<string, string>;
		method?: string;
	}
	interface Histogram {
		average: number;
		mean: number;
		p50: number;
		p99: number;
		total: number;
	}
	interface Result {
		requests: Histogram;
		latency: Histogram;
		throughput: Histogram;
		non2xx: number;
		errors: number;
		timeouts: number;
	}
	function autocannon(options: Options): Promise<Result>;
	export default autocannon;
}
