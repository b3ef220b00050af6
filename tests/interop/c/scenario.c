/*
 * Interop scenario run with the real NATS C client's streaming API (cnats
 * 3.4.1, Debian's libnats-dev, built with STAN support; the header only
 * declares it when NATS_HAS_STREAMING is defined).
 *
 * Build: cc -DNATS_HAS_STREAMING -o scenario scenario.c -lnats
 * Usage: scenario <nats_url> <cluster_id> <scenario>
 * Scenarios:
 *   publish_redelivery  3 sync publishes (PubAck error must be empty), then a
 *                       subscription from First with manual acks and AckWait
 *                       1 s that acks 1 and 3 but not 2: deliveries must be
 *                       exactly [1,2,3,2], only the last one redelivered.
 *   publish_error       publish to "foo.*" must fail with the server's PubAck
 *                       error "stan: invalid publish request".
 * Prints one JSON line; exit 0 on success, 1 on failure.
 */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DELIVERIES 16

static struct {
    pthread_mutex_t mu;
    int n;
    uint64_t seq[MAX_DELIVERIES];
    int redelivered[MAX_DELIVERIES];
    int64_t at_ms[MAX_DELIVERIES];
} got;

static const char *scenario = "";

static void fail(const char *fmt, const char *detail) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, detail);
    fprintf(stderr, "c interop %s FAILED: %s\n", scenario, msg);
    /* msg comes from us and the client's error texts: no quotes or backslashes */
    printf("{\"client\":\"c\",\"scenario\":\"%s\",\"ok\":false,\"error\":\"%s\"}\n", scenario, msg);
    fflush(stdout);
    exit(1);
}

static void on_msg(stanConnection *sc, stanSubscription *sub, const char *channel, stanMsg *msg, void *closure) {
    (void)sc;
    (void)channel;
    (void)closure;
    uint64_t seq = stanMsg_GetSequence(msg);
    int redelivered = stanMsg_IsRedelivered(msg) ? 1 : 0;
    pthread_mutex_lock(&got.mu);
    if (got.n < MAX_DELIVERIES) {
        got.seq[got.n] = seq;
        got.redelivered[got.n] = redelivered;
        got.at_ms[got.n] = nats_Now();
        got.n++;
    }
    pthread_mutex_unlock(&got.mu);
    if (seq != 2 || redelivered)
        stanSubscription_AckMsg(sub, msg);
    stanMsg_Destroy(msg);
}

static int count(void) {
    pthread_mutex_lock(&got.mu);
    int n = got.n;
    pthread_mutex_unlock(&got.mu);
    return n;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: scenario <nats_url> <cluster_id> <publish_redelivery|publish_error>\n");
        return 64;
    }
    const char *url = argv[1], *cluster = argv[2];
    scenario = argv[3];
    stanConnOptions *copts = NULL;
    stanConnection *sc = NULL;
    natsStatus s;

    pthread_mutex_init(&got.mu, NULL);
    if (stanConnOptions_Create(&copts) != NATS_OK || stanConnOptions_SetURL(copts, url) != NATS_OK)
        fail("%s", "connection options");
    s = stanConnection_Connect(&sc, cluster, "c-client", copts);
    if (s != NATS_OK) fail("connect: %s", nats_GetLastError(&s));

    if (strcmp(scenario, "publish_redelivery") == 0) {
        const char *ch = "interop.c.publish_redelivery";
        char data[16];
        for (int i = 1; i <= 3; i++) {
            snprintf(data, sizeof data, "msg-%d", i);
            s = stanConnection_Publish(sc, ch, data, (int)strlen(data));
            if (s != NATS_OK) fail("publish: %s", nats_GetLastError(&s));
        }
        stanSubOptions *so = NULL;
        stanSubscription *sub = NULL;
        if (stanSubOptions_Create(&so) != NATS_OK || stanSubOptions_DeliverAllAvailable(so) != NATS_OK ||
            stanSubOptions_SetManualAckMode(so, true) != NATS_OK || stanSubOptions_SetAckWait(so, 1000) != NATS_OK)
            fail("%s", "subscription options");
        s = stanConnection_Subscribe(&sub, sc, ch, on_msg, NULL, so);
        if (s != NATS_OK) fail("subscribe: %s", nats_GetLastError(&s));
        for (int waited = 0; count() < 4 && waited < 5000; waited += 10) nats_Sleep(10);
        nats_Sleep(2200); /* two more ack waits: nothing else may arrive */
        pthread_mutex_lock(&got.mu);
        int ok = got.n == 4 && got.seq[0] == 1 && got.seq[1] == 2 && got.seq[2] == 3 && got.seq[3] == 2 &&
                 !got.redelivered[0] && !got.redelivered[1] && !got.redelivered[2] && got.redelivered[3];
        int64_t delay = got.n >= 4 ? got.at_ms[3] - got.at_ms[1] : -1;
        char seqs[256] = "", *p = seqs;
        for (int i = 0; i < got.n; i++)
            p += snprintf(p, sizeof seqs - (size_t)(p - seqs), "%s{\"seq\":%llu,\"redelivered\":%s}", i ? "," : "",
                          (unsigned long long)got.seq[i], got.redelivered[i] ? "true" : "false");
        pthread_mutex_unlock(&got.mu);
        if (!ok) fail("deliveries [%s], expected seqs 1,2,3,2 with only the last redelivered", seqs);
        if (delay < 700 || delay > 3000) fail("%s", "seq 2 not redelivered about 1 s after its first delivery");
        stanSubscription_Close(sub);
        stanSubscription_Destroy(sub);
        stanSubOptions_Destroy(so);
        printf("{\"client\":\"c\",\"scenario\":\"%s\",\"ok\":true,\"deliveries\":[%s],\"redelivery_delay_ms\":%lld}\n",
               scenario, seqs, (long long)delay);
    } else if (strcmp(scenario, "publish_error") == 0) {
        s = stanConnection_Publish(sc, "foo.*", "bad", 3);
        const char *err = nats_GetLastError(&s);
        if (s == NATS_OK) fail("%s", "publish to foo.* succeeded");
        if (err == NULL || strstr(err, "stan: invalid publish request") == NULL)
            fail("publish to foo.*: error %s, expected stan: invalid publish request", err ? err : "(none)");
        printf("{\"client\":\"c\",\"scenario\":\"%s\",\"ok\":true,\"error\":\"stan: invalid publish request\"}\n",
               scenario);
    } else {
        fail("unknown scenario %s", scenario);
    }
    s = stanConnection_Close(sc);
    if (s != NATS_OK) fail("close: %s", nats_GetLastError(&s));
    stanConnection_Destroy(sc);
    stanConnOptions_Destroy(copts);
    fflush(stdout);
    nats_Close();
    return 0;
}
