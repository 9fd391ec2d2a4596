// The browser's time zone, for the server to show times in (a user's own
// setting, when chosen, wins). Without JavaScript times stay in UTC, labelled.
(function () {
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && document.cookie.indexOf("coupler_tz=" + encodeURIComponent(zone)) === -1) {
      document.cookie = "coupler_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* old browser: UTC */ }
})();
