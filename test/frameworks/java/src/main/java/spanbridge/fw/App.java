package spanbridge.fw;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.http.HttpEntity;
import org.springframework.http.HttpHeaders;
import org.springframework.http.HttpMethod;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.http.client.SimpleClientHttpRequestFactory;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestHeader;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.RequestMethod;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.HttpStatusCodeException;
import org.springframework.web.client.RestTemplate;

/**
 * The shared test-service protocol (test/frameworks/README.md): /hello, /headers, /call?url=,
 * and the W3C harness's /test. Outgoing calls use a blocking client (HttpURLConnection) on the
 * request's own thread; /call-jdk makes them with the JDK's HttpClient or on other threads.
 */
@SpringBootApplication
@RestController
public class App {
  private final RestTemplate http = new RestTemplate(new SimpleClientHttpRequestFactory());
  private final String name = System.getenv().getOrDefault("OTEL_SERVICE_NAME", "spring");
  /** The JDK's own client, as built by default (its selector thread and executor). */
  private final HttpClient jdk = HttpClient.newHttpClient();
  /** An application thread pool (ThreadPoolExecutor) for mode=executor. */
  private final ExecutorService pool = Executors.newFixedThreadPool(8);

  public static void main(String[] args) {
    SpringApplication.run(App.class, args);
  }

  @RequestMapping("/hello")
  public String hello() {
    return "hello from " + name + "\n";
  }

  @RequestMapping("/headers")
  public Map<String, String> headers(@RequestHeader HttpHeaders h) {
    return Map.of("traceparent", String.join(",", h.getOrEmpty("traceparent")),
        "tracestate", String.join(",", h.getOrEmpty("tracestate")));
  }

  @RequestMapping(value = "/call", method = {RequestMethod.GET, RequestMethod.POST, RequestMethod.PUT})
  public ResponseEntity<String> call(@RequestParam("url") String url, @RequestBody(required = false) String body,
      @RequestParam(name = "delay_ms", defaultValue = "0") int delayMs, jakarta.servlet.http.HttpServletRequest req)
      throws InterruptedException {
    pause(delayMs);
    HttpMethod m = HttpMethod.valueOf(req.getMethod());
    HttpHeaders hs = new HttpHeaders();
    if (body != null) hs.setContentType(MediaType.TEXT_PLAIN);
    try {
      ResponseEntity<String> r = http.exchange(url, m, new HttpEntity<>(body, hs), String.class);
      return ResponseEntity.status(r.getStatusCode()).body(name + " -> " + r.getBody());
    } catch (HttpStatusCodeException e) {
      return ResponseEntity.status(e.getStatusCode()).body(name + " -> " + e.getResponseBodyAsString());
    }
  }

  /**
   * GET `url` another way than the request's own thread with a blocking client:
   * mode=send: HttpClient.send on the request's thread (the client writes from its own threads too);
   * mode=async: HttpClient.sendAsync, the response written when it completes (servlet async);
   * mode=executor: RestTemplate on a thread of an application pool (ThreadPoolExecutor);
   * mode=supply: RestTemplate in CompletableFuture.supplyAsync (the common ForkJoinPool).
   */
  @RequestMapping("/call-jdk")
  public Object callJdk(@RequestParam("url") String url, @RequestParam(name = "mode", defaultValue = "send") String mode,
      @RequestParam(name = "delay_ms", defaultValue = "0") int delayMs) throws Exception {
    pause(delayMs);
    HttpRequest r = HttpRequest.newBuilder(URI.create(url)).GET().build();
    switch (mode) {
      case "send":
        return answer(jdk.send(r, HttpResponse.BodyHandlers.ofString()));
      case "async":
        return jdk.sendAsync(r, HttpResponse.BodyHandlers.ofString()).thenApply(this::answer);
      case "executor":
        return pool.submit(() -> blocking(url)).get();
      case "supply":
        return CompletableFuture.supplyAsync(() -> blocking(url));
      default:
        return ResponseEntity.badRequest().body("mode: send, async, executor or supply\n");
    }
  }

  private ResponseEntity<String> answer(HttpResponse<String> r) {
    return ResponseEntity.status(r.statusCode()).body(name + " -> " + r.body());
  }

  private ResponseEntity<String> blocking(String url) {
    try {
      ResponseEntity<String> r = http.getForEntity(url, String.class);
      return ResponseEntity.status(r.getStatusCode()).body(name + " -> " + r.getBody());
    } catch (HttpStatusCodeException e) {
      return ResponseEntity.status(e.getStatusCode()).body(name + " -> " + e.getResponseBodyAsString());
    }
  }

  /** Waits a random time below `ms` (0: none), so concurrent requests call out in a mixed order. */
  private static void pause(int ms) throws InterruptedException {
    if (ms > 0) Thread.sleep(ThreadLocalRandom.current().nextInt(ms));
  }

  @RequestMapping(value = "/test", method = RequestMethod.POST)
  public String w3c(@RequestBody List<Map<String, Object>> actions) {
    for (Map<String, Object> a : actions) {
      HttpHeaders hs = new HttpHeaders();
      hs.setContentType(MediaType.APPLICATION_JSON);
      try {
        http.postForEntity((String) a.get("url"), new HttpEntity<>(a.get("arguments"), hs), String.class);
      } catch (Exception e) {
        // the harness decides what a failed call means
      }
    }
    return "ok";
  }
}
