// The test Worker's entry: the suites run against its DB binding.
export default {
  fetch(): Response {
    return new Response("checkpointstore-d1 test worker");
  },
} satisfies ExportedHandler;
