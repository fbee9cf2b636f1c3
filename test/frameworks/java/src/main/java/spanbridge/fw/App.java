package spanbridge.fw;

import java.util.List;
import java.util.Map;

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
 * request's own thread.
 */
@SpringBootApplication
@RestController
public class App {
  private final RestTemplate http = new RestTemplate(new SimpleClientHttpRequestFactory());
  private final String name = System.getenv().getOrDefault("OTEL_SERVICE_NAME", "spring");

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
      jakarta.servlet.http.HttpServletRequest req) {
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
